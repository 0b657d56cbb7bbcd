#!/usr/bin/perl

# Cross-site POSTs: Sec-Fetch-Site other than "same-origin" (or "none")
# refuses a POST to every page, even when Origin names this server; the
# same POST from this origin goes through.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my $alice = $t->ready_user('alice');
my $bob = $t->add_user('bob');
$t->cert('bob');
my $bob_fp = $t->fingerprint('bob');

# the page's form POSTed with this server's Origin and Sec-Fetch-Site $site
sub from { (origin => $t->origin, headers => ['Sec-Fetch-Site' => $_[0]]) }

my $r;

# --- sign-up
for my $site ('cross-site', 'same-site') {
    $r = $t->signup('bob', 'bob', $bob, lang => 'en', from($site));
    is($r->{status}, 403, "sign-up, own Origin, Sec-Fetch-Site $site: 403");
    like($r->{text}, qr/Invalid request/, '... "Invalid request"');
}
$r = $t->signup('bob', 'bob', $bob, from('cross-site'),
    headers => ['Sec-Fetch-Site' => 'same-origin',
                'Sec-Fetch-Site' => 'cross-site']);
is($r->{status}, 403, 'sign-up, Sec-Fetch-Site twice: 403');
is($t->redis_cmd('EXISTS', $t->rkey("cert:$bob_fp")), 0,
    '... bob\'s certificate is bound to nobody');
is($t->failures('bob'), 0, '... nothing counted');
$r = $t->signup('bob', 'bob', $bob, from('same-origin'));
is($r->{status}, 200, 'sign-up, Sec-Fetch-Site same-origin: 200');
is($t->redis_cmd('HGET', $t->rkey("cert:$bob_fp"), 'user'), 'bob',
    '... bound to bob');

# --- login
for my $site ('cross-site', 'same-site') {
    $r = $t->login('alice', 'alice', $alice->{password}, from($site));
    is($r->{status}, 403, "login, own Origin, Sec-Fetch-Site $site: 403");
    ok(!defined cookie($r), '... no session');
}
is($t->failures('alice'), 0, '... nothing counted');
$r = $t->login('alice', 'alice', $alice->{password}, from('none'));
is($r->{status}, 303, 'login, Sec-Fetch-Site none: 303');
ok(defined cookie($r), '... a session');
$r = $t->login('alice', 'alice', $alice->{password}, from('same-origin'));
is($r->{status}, 303, 'login, Sec-Fetch-Site same-origin: 303');
my $ck = cookie($r);
ok(defined $ck, '... a session');

# --- password change
my $new = 'Changed-alice-2025';
for my $site ('cross-site', 'same-site') {
    $r = $t->change_password('alice', $ck, $alice->{password}, $new,
        undef, from($site));
    is($r->{status}, 403, "password change, own Origin, Sec-Fetch-Site "
        . "$site: 403");
}
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 200, '... the session lives on');
$r = $t->change_password('alice', $ck, $alice->{password}, $new, undef,
    from('same-origin'));
is($r->{status}, 200,
    'password change, same-origin, with the old password: 200');
$ck = cookie($r) if defined cookie($r) && cookie($r) ne '';

# --- logout
for my $site ('cross-site', 'same-site') {
    $r = $t->logout('alice', $ck, from($site));
    is($r->{status}, 403, "logout, own Origin, Sec-Fetch-Site $site: 403");
}
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 200, '... still logged in');
is(backend_user($r), 'alice', '... as alice');
$r = $t->logout('alice', $ck, from('same-origin'));
is($r->{status}, 200, 'logout, Sec-Fetch-Site same-origin: 200');
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 303, '... logged out');

done_testing();
