#!/usr/bin/perl

# Sign-up: binds a certificate to a user ID, once.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my %pw = map { $_ => $t->add_user($_) } qw(alice bob dave);
$t->cert($_) for qw(alice bob carol dave nobody);
$t->cert('alice2', cn => 'alice');
my $fp = $t->fingerprint('alice');

# --- the form
my $r = $t->http(GET => '/ecodoc/signup', cert => 'alice');
is($r->{status}, 200, 'signup form');
like(hdr($r, 'content-type'), qr{^text/html;\s*charset=utf-8}i, 'form is UTF-8 HTML');
like(hdr($r, 'cache-control') // '', qr/no-store/, 'Cache-Control: no-store');
ok(defined hdr($r, 'content-security-policy'), 'Content-Security-Policy set');
# "no-referrer" would make browsers send "Origin: null" with the form's POST,
# which the Origin check refuses
is(hdr($r, 'referrer-policy'), 'same-origin',
    'Referrer-Policy: same-origin, so POSTs carry a real Origin');
ok(defined form_token($r) && form_token($r) ne '', 'form carries a csrf token');

# --- CSRF and Origin refusals (before the good sign-up; none may bind)
$r = $t->signup('alice', 'alice', $pw{alice}, csrf => undef);
is($r->{status}, 403, 'csrf missing: 403');
$r = $t->signup('alice', 'alice', $pw{alice}, csrf => 'A' x 43);
is($r->{status}, 403, 'csrf wrong: 403');
$r = $t->signup('alice', 'alice', $pw{alice}, csrf => '');
is($r->{status}, 403, 'csrf empty: 403');
$r = $t->signup('alice', 'alice', $pw{alice}, origin => 'https://evil.example');
is($r->{status}, 403, 'cross-site Origin: 403');
$r = $t->signup('alice', 'alice', $pw{alice}, lang => 'en',
    origin => 'https://localhost:' . ($t->port == 1 ? 2 : $t->port - 1));
is($r->{status}, 403, 'Origin of another port: 403');
like($r->{text}, qr/invalid request/i, '... "invalid request"');
$r = $t->signup('alice', 'alice', $pw{alice}, origin => 'null');
is($r->{status}, 403, 'Origin null: 403');
is($t->redis_cmd('EXISTS', $t->rkey("cert:$fp")), 0, 'no binding after refusals');
is($t->failures('alice'), 0, 'csrf refusals do not count as failures');

# --- success (with a same-origin Origin, as a browser sends it)
$r = $t->signup('alice', 'alice', $pw{alice}, origin => $t->origin);
is($r->{status}, 200, 'signup: 200');
like($r->{text}, qr/サインアップが完了しました。/, 'signup: Japanese completion text');
like($r->{text}, qr{href="[^"]*/ecodoc/login[^"]*"}, 'signup: link to the login page');
is($t->redis_cmd('HGET', $t->rkey("cert:$fp"), 'user'), 'alice', 'cert:FP user = alice');
is($t->redis_cmd('SISMEMBER', $t->rkey('user:alice:certs'), $fp), 1,
    'user:alice:certs holds the fingerprint');
ok(grep({ $_->{event} eq 'signup' && $_->{user} eq 'alice' && $_->{fp} eq $fp }
    $t->audit), 'audit: signup with user and fingerprint');

# --- already-bound certificate
$r = $t->signup('alice', 'alice', $pw{alice}, lang => 'en');
is($r->{status}, 409, 'signup again with the same cert: 409');
like($r->{text}, qr/This certificate has already been signed up\./, '... message');

# --- user bound to another certificate
$r = $t->signup('alice2', 'alice', $pw{alice}, lang => 'en');
is($r->{status}, 409, 'second cert for alice: 409');
like($r->{text},
    qr/This user ID has already been signed up with another certificate\./,
    '... message');
is($t->redis_cmd('EXISTS', $t->rkey('cert:' . $t->fingerprint('alice2'))), 0,
    'second cert not bound');
is($t->redis_cmd('SCARD', $t->rkey('user:alice:certs')), 1, 'alice has one cert');

# --- subject mismatch: carol's certificate for user bob
$r = $t->signup('carol', 'bob', $pw{bob}, lang => 'en');
is($r->{status}, 403, 'cert CN carol, user bob: 403');
like($r->{text}, qr/This certificate was not issued for this user ID\./,
    '... message');
is($t->redis_cmd('EXISTS', $t->rkey('cert:' . $t->fingerprint('carol'))), 0,
    'carol cert not bound');
is($t->redis_cmd('SCARD', $t->rkey('user:bob:certs')), 0, 'bob has no cert');

# --- wrong password: 401, counted
$r = $t->signup('bob', 'bob', 'wrong-password-1', lang => 'en');
is($r->{status}, 401, 'wrong password: 401');
like($r->{text}, qr/The user ID or password is incorrect\./, '... message');
is($t->failures('bob'), 1, 'wrong password counted');
is($t->redis_cmd('EXISTS', $t->rkey('cert:' . $t->fingerprint('bob'))), 0,
    'no binding after a wrong password');
$r = $t->signup('bob', 'bob', 'wrong-password-2');
is($r->{status}, 401, 'second wrong password: 401');
is($t->failures('bob'), 2, 'counted again');

# the right one then works and resets the count
$r = $t->signup('bob', 'bob', $pw{bob});
is($r->{status}, 200, 'bob signs up with the right password');
is($t->failures('bob'), 0, 'success resets the failure count');

# --- unknown user: 401, the same words, nothing created
$r = $t->signup('nobody', 'nobody', 'whatever-123', lang => 'en');
is($r->{status}, 401, 'unknown user: 401');
like($r->{text}, qr/The user ID or password is incorrect\./, '... same message');
is($t->redis_cmd('EXISTS', $t->rkey('user:nobody')), 0, 'no user record made');
is($t->redis_cmd('EXISTS', $t->rkey('cert:' . $t->fingerprint('nobody'))), 0,
    'no binding made');

# --- English wording on request, Japanese by default
$r = $t->signup('dave', 'dave', $pw{dave}, lang => 'en-US,en;q=0.9,ja;q=0.5');
is($r->{status}, 200, 'dave signs up');
like($r->{text}, qr/Sign-up is complete\./, 'English completion text');
unlike($r->{text}, qr/サインアップが完了しました。/, '... not the Japanese one');

is($t->backend_requests(), 0, 'signup never reaches the backend');
is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
