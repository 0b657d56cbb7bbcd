#!/usr/bin/perl

# The login journey and the gate over HTTP/2 (curl, ALPN h2): sign-up,
# login, the initial password change, a gated request reaching the
# backend with the identity headers, logout; no session: a redirect; a
# client-sent X-Ecodoc-User dropped; two sessions as two streams of one
# connection.
#
# The harness serves HTTP/2 beside HTTP/1.1 on the one TLS port:
#
#     listen 127.0.0.1:PORT ssl;          # 1.25.1+
#     http2 on;
#
#     listen 127.0.0.1:PORT ssl http2;    # 1.22, 1.24

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
plan(skip_all => 'nginx without --with-http_v2_module')
    unless $t->has_module('http_v2');
plan(skip_all => 'curl without HTTP/2') unless Ecodoc::Test::curl_has_http2();

$t->start();
$t->use_http2(1);

my $fp = $t->fingerprint($t->cert('alice'));
my @identity = sort map { lc } 'X-Ecodoc-User: alice',
    "X-Ecodoc-Cert-Fingerprint: $fp";

# --- the gate: no session
my $r = $t->http(GET => '/docs/x', cert => 'alice');
is($r->{http_version}, '2', 'the client speaks HTTP/2');
is($r->{status}, 303, 'unbound certificate: 303');
is($t->location_path($r), '/ecodoc/signup', '... to signup');
$r = $t->http(GET => '/docs/x');
is($r->{status}, 403, 'no certificate: 403');

# --- sign-up
my $initial = $t->add_user('alice');
$r = $t->signup('alice', 'alice', $initial);
is($r->{status}, 200, 'sign-up: 200');
is($r->{http_version}, '2', '... over HTTP/2');
like($r->{text}, qr/サインアップが完了しました。/, '... done');

$r = $t->http(GET => '/docs/x', cert => 'alice');
is($r->{status}, 303, 'bound certificate, no session: 303');
like($t->location_path($r) // '', qr{^/ecodoc/login}, '... to login');

# --- login with the initial password
$r = $t->login('alice', 'alice', $initial);
is($r->{status}, 303, 'login: 303');
is($r->{http_version}, '2', '... over HTTP/2');
is($t->location_path($r), '/ecodoc/password', '... to the password change');
my $c0 = cookie($r) // '';
like($c0, qr/^[A-Za-z0-9_-]{43}\z/, '... a session cookie');
like(set_cookie_line($r) // '', qr/;\s*Secure\s*(;|\z)/i, '... Secure');

$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c0);
is($r->{status}, 303, 'initial password: 303');
is($t->location_path($r), '/ecodoc/password', '... to /ecodoc/password');
is($t->backend_requests(), 0, '... backend not reached');

# --- the initial password change
my $pw = 'Alice-h2-pass-42';
$r = $t->change_password('alice', $c0, $initial, $pw);
is($r->{status}, 200, 'password changed: 200');
like($r->{text}, qr/パスワードを変更しました。/, '... done');
my $c1 = cookie($r) // '';
like($c1, qr/^[A-Za-z0-9_-]{43}\z/, '... a new cookie');
isnt($c1, $c0, '... rotated');

# --- a gated request reaches the backend, with the identity headers only
$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c1,
    headers => ['X-Ecodoc-User' => 'mallory',
        'X-Ecodoc-Cert-Fingerprint' => '0' x 64]);
is($r->{status}, 200, 'gated GET: 200');
is($r->{http_version}, '2', '... over HTTP/2');
is(backend_user($r), 'alice', '... the backend sees alice');
is_deeply([sort map { lc } identity_headers($r)], \@identity,
    '... and only the headers nginx set: the client\'s are dropped')
    or diag(join "\n", identity_headers($r));
unlike($r->{text}, qr/mallory/, '... no spoofed value anywhere');

$r = $t->http(POST => '/api', cert => 'alice', cookie => $c1,
    form => [a => 1], headers => ['x-ecodoc-user' => 'mallory']);
is($r->{status}, 200, 'gated POST: 200');
is_deeply([sort map { lc } identity_headers($r)], \@identity,
    '... the client\'s X-Ecodoc-User dropped');

$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c0);
is($r->{status}, 303, 'the cookie before the change is dead');

# --- two sessions on one connection: streams are judged one by one
my $c2 = cookie($t->login('alice', 'alice', $pw)) // '';
like($c2, qr/^[A-Za-z0-9_-]{43}\z/, 'a second session');
is($t->logout('alice', $c2)->{status}, 200, '... logged out');
my @got = streams($t, 'alice', $c1, $c2, $c1, 'garbage', $c1);
is($got[0]{connects}, 1, 'one connection');
is_deeply([map { $_->{connects} } @got[1 .. $#got]], [0, 0, 0, 0],
    '... reused by every other request');
is_deeply([map { $_->{version} } @got], [('2') x 5], '... all HTTP/2');
is_deeply([map { $_->{status} } @got], [200, 303, 200, 303, 200],
    'live, ended, live, malformed, live: 200 303 200 303 200');

# --- logout
$r = $t->logout('alice', $c1);
is($r->{status}, 200, 'logout: 200');
like($r->{text}, qr/ログアウトしました。/, '... done');
like(set_cookie_line($r) // '', qr/^__Host-ecodoc=(;|\s*$|.*Max-Age=0|.*Expires=)/i,
    '... clears the cookie');
$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c1);
is($r->{status}, 303, 'after logout: 303');
like($t->location_path($r) // '', qr{^/ecodoc/login}, '... to login');

# --- a form posted without Content-Length (the body's end is the stream's)
my $get = $t->http(GET => '/ecodoc/login', cert => 'alice');
$r = $t->http(POST => '/ecodoc/login', cert => 'alice',
    cookies => cookies($get), chunked => 1,
    form => [user => 'alice', password => $pw, csrf => form_token($get)]);
is($r->{status}, 303, 'login without Content-Length: 303');
is($t->location_path($r), '/', '... to /');

is($t->backend_requests(), 5, 'the backend saw the five live requests, no other');
is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();

###############################################################################

# GET /docs/x once per cookie, all with one curl and so one connection;
# each transfer's status and new connections ('connects')
sub streams {
    my ($t, $cert, @cookies) = @_;
    my @cmd = ('curl', '-q', '-sS', '--http2', '--noproxy', '*',
        '--max-time', 10);
    my $url = 'https://localhost:' . $t->port . '/docs/x';
    for my $i (0 .. $#cookies) {
        push @cmd, '--next' if $i;
        push @cmd, '--cacert', $t->path('ca.crt'),
            '--resolve', 'localhost:' . $t->port . ':127.0.0.1',
            '--cert', $t->path("$cert.crt"), '--key', $t->path("$cert.key"),
            '-H', "Cookie: $Ecodoc::Test::COOKIE=$cookies[$i]",
            '-o', '/dev/null',
            '-w', '%{http_version} %{http_code} %{num_connects}\n', $url;
    }
    open(my $fh, '-|', @cmd) or die "curl: $!";
    my @r;
    while (<$fh>) {
        my ($v, $status, $connects) = split;
        push @r, { version => $v, status => $status, connects => $connects };
    }
    close $fh;
    return @r;
}
