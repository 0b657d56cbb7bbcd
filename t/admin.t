#!/usr/bin/perl

# ecodoc-ca user administration: add, show, list, unlock,
# reset-password, delete, audit; and what each does to the gate.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

# --- add
my $out = $t->ca('user', 'add', 'alice', '--cost', 12);
like($out, qr/\Auser: alice\ninitial password: (\S+)\ncertificate password: (\S+)\n--- notice ---\n/,
    'user add output: the two secrets, then the notice');
my ($notice) = $out =~ /--- notice ---\n(.*)\z/s;
like($notice, qr/alice/, 'the notice names the user');
like($notice, qr{https://\S+/enroll/}, '... and the enrollment URL');
my ($ipw, $cpw) = $out =~ /initial password: (\S+)\ncertificate password: (\S+)/;
unlike($notice, qr/\Q$ipw\E|\Q$cpw\E/, '... but neither secret');
my ($alice_pw) = $out =~ /initial password: (\S+)/;
my $rec = $t->user_record('alice');
is($rec->{initial}, '1', 'record: initial 1');
is($rec->{locked}, '0', 'record: locked 0');
is($rec->{failures} // '0', '0', 'record: failures 0');
ok(defined $rec->{pw} && length $rec->{pw} > 20, 'record: a password hash');
unlike($rec->{pw} // '', qr/\Q$alice_pw\E/, 'record: the password is not stored');
ok(grep({ $_->{event} eq 'user_added' && $_->{user} eq 'alice' } $t->audit),
    'audit: user_added');

my $r = $t->ca({}, 'user', 'add', 'alice', '--cost', 12);
isnt($r->{exit}, 0, 'adding an existing user fails');
is($t->user_record('alice')->{pw}, $rec->{pw}, '... and changes nothing');

my $bob_pw = $t->add_user('bob');
isnt($bob_pw, $alice_pw, 'each user gets their own initial password');

# --- bad user IDs: exit 2, nothing written
my $keys = $t->redis_cmd('DBSIZE');
for my $bad ('bad user', 'a' x 65, '', "x\ny", 'ü', 'a/b', 'a:b', 'a*') {
    (my $show = $bad) =~ s/\n/\\n/g;
    for my $cmd (['user', 'add', $bad, '--cost', 12], ['user', 'show', $bad],
        ['user', 'unlock', $bad], ['user', 'delete', $bad],
        ['user', 'reset-password', $bad, '--cost', 12])
    {
        my $res = $t->ca({}, @$cmd);
        is($res->{exit}, 2, "@$cmd[0,1] '$show': exit 2");
    }
}
is($t->redis_cmd('DBSIZE'), $keys, 'bad user IDs wrote nothing');
is($t->ca({}, 'user', 'add', 'a' x 64, '--cost', 12)->{exit}, 0,
    'a 64-character user ID is accepted');

# --- show
my $s = $t->user_show('alice');
is($s->{state}, 'active', 'show: state active');
is($s->{failures}, '0', 'show: failures 0');
is($s->{'initial password'}, 'yes', 'show: initial password yes');
is($s->{certificates}, 'none', 'show: certificates none');
is($s->{sessions}, '0', 'show: sessions 0');
isnt($t->ca({}, 'user', 'show', 'nobody')->{exit}, 0, 'show unknown user fails');

# after sign-up and login
$t->cert('alice');
is($t->signup('alice', 'alice', $alice_pw)->{status}, 200, 'alice signs up');
my $c = cookie($t->login('alice', 'alice', $alice_pw));
my $fp = $t->fingerprint('alice');
$s = $t->user_show('alice');
like($s->{certificates}, qr/\b$fp\b/, 'show: the bound fingerprint');
is($s->{sessions}, '1', 'show: sessions 1');
my $new = 'Alice-new-pass-42';
$r = $t->change_password('alice', $c, $alice_pw, $new);
is($r->{status}, 200, 'alice changes her password');
$c = cookie($r) // $c;
is($t->user_show('alice')->{'initial password'}, 'no', 'show: initial password no');

# --- list
$out = $t->ca('user', 'list');
like($out, qr/^alice\b/m, 'list: alice');
like($out, qr/^bob\b/m, 'list: bob');
like($out, qr/^a{64}\b/m, 'list: the long one');
unlike($out, qr/nobody/, 'list: nobody else');

# --- unlock
for my $i (1 .. 6) {
    $t->login('alice', 'alice', "wrong-password-$i");
}
$s = $t->user_show('alice');
is($s->{state}, 'locked', 'six wrong: show says locked');
is($s->{failures}, '6', 'show: failures 6');
$out = $t->ca('user', 'unlock', 'alice');
$s = $t->user_show('alice');
is($s->{state}, 'active', 'unlock: active');
is($s->{failures}, '0', 'unlock: failures 0');
$r = $t->login('alice', 'alice', $new);
is($r->{status}, 303, 'unlock: login works');
$c = cookie($r);
is($t->http(GET => '/', cert => 'alice', cookie => $c)->{status}, 200,
    'alice reaches the backend');
isnt($t->ca({}, 'user', 'unlock', 'nobody')->{exit}, 0, 'unlock unknown user fails');

# --- reset-password: sessions end, a new change is forced
$out = $t->ca('user', 'reset-password', 'alice', '--cost', 12);
my ($reset_pw) = $out =~ /initial password: (\S+)/;
ok(defined $reset_pw, 'reset-password prints a new initial password');
isnt($reset_pw // '', $alice_pw, '... a new one');
$r = $t->http(GET => '/', cert => 'alice', cookie => $c);
is($r->{status}, 303, 'reset: the old session is dead');
like($t->location_path($r) // '', qr{^/ecodoc/login}, '... to login');
$s = $t->user_show('alice');
is($s->{'initial password'}, 'yes', 'reset: initial password yes');
is($s->{sessions}, '0', 'reset: sessions 0');
is($t->login('alice', 'alice', $new)->{status}, 401, 'reset: the old password is refused');
$r = $t->login('alice', 'alice', $reset_pw);
is($r->{status}, 303, 'reset: the new initial password logs in');
is($t->location_path($r), '/ecodoc/password', '... and must be changed');
$c = cookie($r);
is($t->http(GET => '/', cert => 'alice', cookie => $c)->{status}, 303,
    '... nothing else is served');
like($t->location_path($t->http(GET => '/', cert => 'alice', cookie => $c)) // '',
    qr{^/ecodoc/password}, '... but the password page');
ok(grep({ $_->{event} eq 'password_reset' && $_->{user} eq 'alice' } $t->audit),
    'audit: password_reset');

# --- delete: the binding goes, the certificate is unbound again
my $b = $t->ready_user('carol');
is($t->http(GET => '/', cert => 'carol', cookie => $b->{cookie})->{status}, 200,
    'carol reaches the backend');
$t->ca('user', 'delete', 'carol');
is($t->redis_cmd('EXISTS', $t->rkey('user:carol')), 0, 'delete: user record gone');
is($t->redis_cmd('EXISTS', $t->rkey("cert:$b->{fp}")), 0, 'delete: binding gone');
is($t->redis_cmd('EXISTS', $t->rkey('user:carol:certs')), 0, 'delete: cert set gone');
is($t->redis_cmd('EXISTS', $t->rkey('user:carol:sessions')), 0, 'delete: session set gone');
is($t->redis_cmd('EXISTS', $t->rkey('enroll:carol')), 0,
    'delete: the certificate password gone');
$r = $t->http(GET => '/', cert => 'carol', cookie => $b->{cookie});
is($r->{status}, 303, 'delete: the certificate is unbound');
is($t->location_path($r), '/ecodoc/signup', '... to signup');
isnt($t->ca({}, 'user', 'show', 'carol')->{exit}, 0, 'delete: show fails');
unlike($t->ca('user', 'list'), qr/^carol\b/m, 'delete: not listed');
isnt($t->ca({}, 'user', 'delete', 'carol')->{exit}, 0, 'delete again fails');
ok(grep({ $_->{event} eq 'user_deleted' && $_->{user} eq 'carol' } $t->audit),
    'audit: user_deleted');

# --- audit
$out = $t->ca('audit', '--count', 1000);
for my $ev (qw(user_added signup login login_failed lock unlock
    password_changed password_reset user_deleted))
{
    like($out, qr/\b$ev\b/, "audit lists $ev");
}
like($out, qr/\b$fp\b/, 'audit shows fingerprints');
like($out, qr/127\.0\.0\.1/, 'audit shows the client address');
$out = $t->ca('audit', '--count', 1);
like($out, qr/\buser_deleted\b/, 'audit --count 1: the latest event');
unlike($out, qr/\buser_added\b/, 'audit --count 1: only that one');
is($t->ca({}, 'audit', '--count', 'x')->{exit}, 2, 'audit --count x: exit 2');

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
