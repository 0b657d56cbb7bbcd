#!/usr/bin/perl

# Six consecutive wrong passwords lock a user ID; sign-up, login and
# password change all count; only the administrator unlocks; a wrong
# password typed with somebody else's certificate does not count.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my $locked_re = qr/This user ID is locked\. Please contact your administrator\./;

# --- five wrong, then the right one: works, and the count starts again
my $al = $t->ready_user('alice');
for my $i (1 .. 5) {
    my $r = $t->login('alice', 'alice', "wrong-password-$i");
    is($r->{status}, 401, "alice wrong password $i: 401");
}
is($t->failures('alice'), 5, 'five failures counted');
my $r = $t->login('alice', 'alice', $al->{password});
is($r->{status}, 303, 'right password after five wrong: 303');
is($t->failures('alice'), 0, 'count reset');
is($t->user_show('alice')->{state}, 'active', 'user show: active');
is($t->user_show('alice')->{failures}, '0', 'user show: failures 0');
for my $i (1 .. 5) {
    $t->login('alice', 'alice', "wrong-again-$i");
}
is($t->login('alice', 'alice', $al->{password})->{status}, 303,
    'five more wrong after the reset: still not locked');

# --- sign-up form: six wrong lock
my $cpw = $t->add_user('carol');
$t->cert('carol');
for my $i (1 .. 5) {
    $r = $t->signup('carol', 'carol', "wrong-password-$i");
    is($r->{status}, 401, "carol signup wrong $i: 401");
}
$r = $t->signup('carol', 'carol', 'wrong-password-6', lang => 'en');
is($r->{status}, 403, 'sixth wrong at signup: 403');
like($r->{text}, $locked_re, '... locked message');
is($t->user_show('carol')->{state}, 'locked', 'user show: carol locked');
$r = $t->signup('carol', 'carol', $cpw);
is($r->{status}, 403, 'right password at signup when locked: 403');
is($t->redis_cmd('EXISTS', $t->rkey('cert:' . $t->fingerprint('carol'))), 0,
    'locked: no binding');

# --- login and password-change forms together
my $d = $t->ready_user('dave');
my $c = $d->{cookie};
is($t->http(GET => '/', cert => 'dave', cookie => $c)->{status}, 200,
    'dave has a session');
my $other = cookie($t->login('dave', 'dave', $d->{password}));
ok($other, 'dave has a second session');
for my $i (1 .. 3) {
    $r = $t->login('dave', 'dave', "wrong-password-$i");
    is($r->{status}, 401, "dave login wrong $i: 401");
}
for my $i (4 .. 5) {
    $r = $t->change_password('dave', $c, "wrong-password-$i", 'Dave-next-pass-1');
    is($r->{status}, 401, "dave password-change wrong $i: 401");
}
is($t->failures('dave'), 5, 'five failures across login and password change');
$r = $t->change_password('dave', $c, 'wrong-password-6', 'Dave-next-pass-1',
    undef, lang => 'en');
is($r->{status}, 403, 'sixth wrong (password change): 403');
like($r->{text}, $locked_re, '... locked message');
my $show = $t->user_show('dave');
is($show->{state}, 'locked', 'user show: dave locked');
is($show->{failures}, '6', 'user show: failures 6');

$r = $t->login('dave', 'dave', $d->{password}, lang => 'en');
is($r->{status}, 403, 'right password when locked: 403');
like($r->{text}, $locked_re, '... locked message');
ok(!defined cookie($r) || cookie($r) eq '', '... no session');

my $before = $t->backend_requests();
for my $ck ($c, $other) {
    $r = $t->http(GET => '/', cert => 'dave', cookie => $ck);
    is($r->{status}, 403, 'existing session after the lock: 403');
}
$r = $t->http(POST => '/api', cert => 'dave', cookie => $c, form => [a => 1]);
is($r->{status}, 403, 'existing session after the lock: POST 403');
is($t->backend_requests(), $before, 'locked: backend not reached');
is($t->redis_cmd('SCARD', $t->rkey('user:dave:sessions')), 0,
    'locked: session set emptied');
ok(grep({ $_->{event} eq 'lock' && $_->{user} eq 'dave' } $t->audit),
    'audit: lock');

# --- unlock
$t->ca('user', 'unlock', 'dave');
$show = $t->user_show('dave');
is($show->{state}, 'active', 'after unlock: active');
is($show->{failures}, '0', 'after unlock: failures 0');
$r = $t->http(GET => '/', cert => 'dave', cookie => $c);
isnt($r->{status}, 200, 'sessions from before the lock stay dead');
$r = $t->login('dave', 'dave', $d->{password});
is($r->{status}, 303, 'after unlock: login works');
$r = $t->http(GET => '/', cert => 'dave', cookie => cookie($r));
is(backend_user($r), 'dave', 'after unlock: backend reached as dave');
ok(grep({ $_->{event} eq 'unlock' && $_->{user} eq 'dave' } $t->audit),
    'audit: unlock');

# --- wrong passwords with a certificate not bound to U do not count for U
my $g = $t->ready_user('gina');
my $m = $t->ready_user('mallory');
for my $i (1 .. 7) {
    $r = $t->login('mallory', 'gina', "wrong-password-$i");
    is($r->{status}, 403, "mallory's cert, user gina, wrong password $i: 403");
}
is($t->failures('gina'), 0, 'gina: no failures counted');
is($t->failures('mallory'), 0, 'mallory: no failures counted either');
is($t->user_show('gina')->{state}, 'active', 'gina not locked');
$t->cert('stranger');    # unbound, CN stranger
for my $i (1 .. 7) {
    $r = $t->signup('stranger', 'gina', "wrong-password-$i");
    isnt($r->{status}, 401, "unbound stranger cert, signup as gina, wrong $i: not 401");
}
is($t->failures('gina'), 0, 'gina: still no failures');
is($t->login('gina', 'gina', $g->{password})->{status}, 303, 'gina logs in');

# at sign-up, for a user not signed up yet
my $hpw = $t->add_user('hank');
$t->cert('hank');
for my $i (1 .. 7) {
    $r = $t->signup('stranger', 'hank', "wrong-password-$i");
    is($r->{status}, 403, "stranger cert, signup as hank, wrong $i: 403 (subject)");
}
is($t->failures('hank'), 0, 'hank: no failures counted');
is($t->signup('hank', 'hank', $hpw)->{status}, 200, 'hank signs up with his own cert');

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
