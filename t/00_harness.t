#!/usr/bin/perl

# The harness itself, against plain nginx (no module): Redis, the CA,
# nginx with mTLS, the backend, the HTTPS client, the helpers. When the
# module is built, also that nginx starts with it and the test config.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new(plain => 1)->start(
    server => "underscores_in_headers on;\n",
);

# --- Redis
is($t->redis_cmd('PING'), 'PONG', 'redis answers PING');
is($t->redis_cmd('SET', 't:k', "a\r\nb"), 'OK', 'redis SET');
is($t->redis_cmd('GET', 't:k'), "a\r\nb", 'redis GET binary-safe');
is($t->redis_cmd('GET', 't:nope'), undef, 'redis nil');
is($t->redis_cmd('HSET', 't:h', 'a', 1, 'b', 2), 2, 'redis integer reply');
is_deeply($t->redis_hash('t:h'), { a => 1, b => 2 }, 'redis HGETALL');
ok(!eval { $t->redis_cmd('NOSUCHCOMMAND'); 1 } && $@ =~ /^redis: ERR/,
    'redis error reply dies');
like($t->redis_cmd('INFO', 'server'), qr/redis_version:/, 'redis INFO');

# --- certificates
for my $c (qw(alice bob)) {
    $t->cert($c);
}
$t->cert('alice2', cn => 'alice');
like($t->fingerprint('alice'), qr/^[0-9a-f]{64}\z/, 'fingerprint format');
isnt($t->fingerprint('alice'), $t->fingerprint('alice2'),
    'two certificates for one CN differ');
{
    my $out = `openssl x509 -in @{[ $t->path('alice.crt') ]} -noout -fingerprint -sha256 -subject -nameopt RFC2253 2>&1`;
    my ($fp) = $out =~ /Fingerprint=([0-9A-F:]+)/;
    $fp =~ s/://g if defined $fp;
    is(lc($fp // ''), $t->fingerprint('alice'), 'fingerprint = openssl sha256');
    like($out, qr/CN=alice,O=Ecodoc Test/, 'client subject');
    my $v = `openssl verify -CAfile @{[ $t->path('ca.crt') ]} @{[ $t->path('alice.crt') ]} 2>&1`;
    like($v, qr/: OK/, 'client cert verifies against the CA');
    $v = `openssl verify -CAfile @{[ $t->path('ca.crt') ]} @{[ $t->path('other.crt') ]} 2>&1`;
    unlike($v, qr/: OK/, 'other CA cert does not verify against the CA');
}

# --- nginx with mTLS, backend
my $r = $t->http(GET => '/x?y=1');
is($r->{status}, 200, 'no cert: through (plain nginx, verify optional)');
is_deeply([identity_headers($r)], ['X-Ecodoc-Verify: NONE'],
    'backend lists the identity headers it got');
like($r->{text}, qr/サービス TOP/, 'backend page');
like($r->{text}, qr{<td>150GB</td><td>55\.0GB</td><td>36\.7</td>}, 'usage table');
like($r->{text}, qr/ディスク使用率が 10 %を超えています。/, 'usage warning');
like($r->{text}, qr{<pre id="request">GET /x\?y=1</pre>}, 'request line');

$r = $t->http(GET => '/', cert => 'alice');
is_deeply([identity_headers($r)], ['X-Ecodoc-Verify: SUCCESS'],
    'client certificate verified');

$r = $t->http(GET => '/', cert => 'other');
is($r->{status}, 400, 'untrusted client certificate: nginx answers 400');
like($r->{body}, qr/The SSL certificate error/, '... "The SSL certificate error"');

$r = $t->http(GET => '/', cert => 'alice', headers => [
    'X-Ecodoc-User' => 'mallory <b>', 'X_Ecodoc_Admin' => '1',
    'x-other' => 'no']);
is_deeply([sort(identity_headers($r))],
    ['X-Ecodoc-User: mallory <b>', 'X-Ecodoc-Verify: SUCCESS',
     'X_Ecodoc_Admin: 1'],
    'backend would show spoofed headers that got through (unescaped)');
is(backend_user($r), 'mallory <b>', 'backend_user');

is($t->backend_requests(), 3, 'backend request counter (the 400 did not reach it)');

$r = $t->http(HEAD => '/');
is($r->{status}, 200, 'HEAD');
is($r->{body}, '', 'HEAD has no body');

$r = $t->http(GET => '/', raw => "GET / HTTP/1.0\r\nHost: x\r\nX-Ecodoc-User: a\r\n\r\n");
is(backend_user($r), 'a', 'raw request');
$r = $t->http(GET => '/', raw => "BLAH\r\n\r\n");
is($r->{status}, 400, 'raw malformed request: 400');

$r = $t->http(POST => '/', form => [a => 'x y&z', b => 'ü']);
is($r->{status}, 200, 'POST form through');
is(form_body(a => 'x y&z', b => 'ü'), 'a=x%20y%26z&b=%C3%BC', 'form_body');

# --- page helpers
$r = $t->http(GET => '/ecodoc/login');
is(form_token($r), 'plain&token', 'form_token');
is(cookie($r), 'plain-token', 'cookie');
like(set_cookie_line($r), qr/HttpOnly/, 'set_cookie_line');
is(form_token('<input value="v1" type="hidden" name="csrf">'), 'v1',
    'form_token, value first');
ok(is_local_path('/a/b?c=//d'), 'is_local_path /a/b');
ok(!is_local_path($_), "not local: $_")
    for '//evil.example', 'https://evil.example', '/\\evil', 'javascript:x', '';
is($t->location_path({ headers => { location => [$t->origin . '/p?q'] } }),
    '/p?q', 'location_path strips our own origin');
is($t->location_path({ headers => { location => ['https://evil.example/p'] } }),
    'https://evil.example/p', 'location_path keeps foreign origins');

# --- parallel
my @res = $t->parallel(8, sub {
    my ($i, $ready) = @_;
    $ready->();
    my $r = $t->http(GET => "/p$i");
    return "$i $r->{status}";
});
is_deeply(\@res, [map { "$_ 200" } 0 .. 7], 'parallel children');
is($t->backend_requests(), 14, 'counter counts concurrent requests');

# --- Redis stop / start with the same data
$t->redis_cmd('SET', 't:keep', 'me');
$t->redis_stop(save => 1);
ok(!$t->redis_running, 'redis stopped');
ok(!eval { $t->redis_cmd('PING'); 1 }, 'redis down: commands fail');
$t->redis_start();
is($t->redis_cmd('GET', 't:keep'), 'me', 'redis restarted with its data');

# --- crashes helper sees nothing in a healthy log
is(scalar($t->crashes), 0, 'no crashed workers');
ok($t->nginx_running, 'nginx still running');

# --- the real config, when the module is there
SKIP: {
    skip 'ECODOC_MODULE not built', 2
        unless $ENV{ECODOC_MODULE} && -f $ENV{ECODOC_MODULE}
        && $ENV{ECODOC_CA} && -x $ENV{ECODOC_CA};
    my $m = Ecodoc::Test->new()->start();
    ok($m->nginx_running, 'nginx starts with the module and the test config');
    my $r = $m->http(GET => '/ecodoc/login', cert => $m->cert('zed'));
    is($r->{status}, 200, 'login page answers');
}

done_testing();
