#!/usr/bin/perl

# The gate's certificate checks: no certificate, a certificate from
# another CA, a certificate not bound to a user, a revoked one, and no
# session. Nothing of it may reach the backend.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start();

$t->cert('carol');    # from our CA, never signed up
$t->cert('alice');

# --- no client certificate
my $r = $t->http(GET => '/');
is($r->{status}, 403, 'no cert: GET / 403');
like(hdr($r, 'content-type'), qr{^text/html;\s*charset=utf-8}i, 'no cert: HTML');
$r = $t->http(GET => '/', lang => 'en');
like($r->{text}, qr/client certificate required/i,
    'no cert: "client certificate required" (en)');
$r = $t->http(GET => '/docs/a.pdf');
is($r->{status}, 403, 'no cert: GET /docs/a.pdf 403');
$r = $t->http(HEAD => '/');
is($r->{status}, 403, 'no cert: HEAD 403');
$r = $t->http(POST => '/api', form => [a => 1]);
is($r->{status}, 403, 'no cert: POST 403');
$r = $t->http(GET => '/', cookie => 'A' x 43);
is($r->{status}, 403, 'no cert with a cookie: 403');

# --- a certificate from an unrelated CA (nginx itself refuses it)
$r = $t->http(GET => '/', cert => 'other');
is($r->{status}, 400, 'other CA cert: 400');
like($r->{body}, qr/The SSL certificate error/, 'other CA cert: nginx SSL certificate error');
$r = $t->http(GET => '/ecodoc/signup', cert => 'other');
is($r->{status}, 400, 'other CA cert on the signup page: 400');

# the same CN as a real user does not help
$t->cert('fake-alice', ca => 'other-ca', cn => 'alice');
$r = $t->http(GET => '/', cert => 'fake-alice');
is($r->{status}, 400, 'other CA cert with CN alice: 400');

# --- a certificate of our CA, not bound to anybody
$r = $t->http(GET => '/', cert => 'carol');
is($r->{status}, 303, 'unbound cert: GET / 303');
is($t->location_path($r), '/ecodoc/signup', 'unbound cert: to /ecodoc/signup');
$r = $t->http(GET => '/docs/x?y=1', cert => 'carol');
is($r->{status}, 303, 'unbound cert: GET /docs/x 303');
is($t->location_path($r), '/ecodoc/signup', '... to /ecodoc/signup');
$r = $t->http(HEAD => '/', cert => 'carol');
is($r->{status}, 303, 'unbound cert: HEAD 303');
$r = $t->http(POST => '/api', cert => 'carol', form => [a => 1]);
is($r->{status}, 403, 'unbound cert: POST 403');
$r = $t->http(PUT => '/api', cert => 'carol', body => 'x',
    content_type => 'text/plain');
is($r->{status}, 403, 'unbound cert: PUT 403');
$r = $t->http(GET => '/ecodoc/signup', cert => 'carol');
is($r->{status}, 200, 'unbound cert: the signup page is served');
ok(defined form_token($r), 'signup page has a csrf token');

is($t->backend_requests(), 0, 'nothing reached the backend so far');

# --- bound but no session, then a session
my $alice = $t->add_user('alice');
$r = $t->signup('alice', 'alice', $alice);
is($r->{status}, 200, 'alice signs up');

$r = $t->http(GET => '/docs/x', cert => 'alice');
is($r->{status}, 303, 'bound, no session: GET 303');
my $loc = $t->location_path($r) // '';
like($loc, qr{^/ecodoc/login\?next=}, '... to /ecodoc/login?next=');
my ($next) = $loc =~ /[?&]next=([^&]*)/;
$next =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge if defined $next;
is($next, '/docs/x', '... next is the requested path');
$r = $t->http(POST => '/api', cert => 'alice', form => [a => 1]);
is($r->{status}, 401, 'bound, no session: POST 401');
$r = $t->http(GET => '/', cert => 'alice', cookie => 'A' x 43);
is($r->{status}, 303, 'bound, made-up cookie: 303');
like($t->location_path($r) // '', qr{^/ecodoc/login}, '... to login');

is($t->backend_requests(), 0, 'still nothing reached the backend');

# the whole way through, so that the zero above can be told apart
$r = $t->login('alice', 'alice', $alice);
my $c = cookie($r);
$r = $t->change_password('alice', $c, $alice, 'Alice-new-pass-42');
is($r->{status}, 200, 'alice changes her initial password');
$c = cookie($r) // $c;
$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c);
is($r->{status}, 200, 'alice reaches the backend');
is(backend_user($r), 'alice', 'backend sees alice');
is($t->backend_requests(), 1, 'backend counted one request');

# --- revocation (of a certificate this CA did not issue): effective at
# once, no reload
my $fp = $t->fingerprint('alice');
like($t->eca('revoke', '--fingerprint', $fp), qr/^revoked: $fp -$/m,
    'ecodoc-ca revoke --fingerprint');
$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c);
is($r->{status}, 403, 'revoked cert: GET 403');
$r = $t->http(POST => '/api', cert => 'alice', cookie => $c, form => [a => 1]);
is($r->{status}, 403, 'revoked cert: POST 403');
$r = $t->login('alice', 'alice', 'Alice-new-pass-42');
isnt($r->{status}, 303, 'revoked cert: no login');
ok(!defined cookie($r) || cookie($r) eq '', 'revoked cert: no session cookie');
is($t->backend_requests(), 1, 'revoked: backend not reached');

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
