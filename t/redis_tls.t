#!/usr/bin/perl

# The module speaks to Redis over TLS (ecodoc_redis_tls): the whole login
# journey and the gate work with the server's certificate verified, then
# with a Redis that asks for a client certificate. A Redis whose
# certificate another CA issued, or that names another host than
# ecodoc_redis_tls_name, is refused: the gate answers 503, never the
# backend, and the error log says why. An IPv6 address as written
# ([::1]:port) is checked against the certificate's IP addresses. The private Redis listens in clear
# too, for ecodoc-ca and the test's own commands.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use IO::Socket::IP;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->make_ca();
$t->issue('redis', subject => '/O=Ecodoc Test/CN=localhost', ext => 'redis');
$t->issue('redis-client', subject => '/O=Ecodoc Test/CN=gateway',
    ext => 'client');
$t->issue('redis-other', subject => '/O=Somebody Else/CN=localhost',
    ca => 'other-ca', ext => 'redis');

my ($tls_port, $other_port) = Ecodoc::Test::free_ports(2);
my %f = map { $_ => $t->path($_) }
    qw(ca.crt redis.crt redis.key redis-client.crt redis-client.key
       redis-other.crt redis-other.key);

# conf(%o): the module's Redis directives for a TLS port
sub conf {
    my (%o) = @_;
    my $c = "    ecodoc_redis " . ($o{host} // '127.0.0.1') . ':'
        . ($o{port} // $tls_port) . ";\n"
        . "    ecodoc_redis_tls on;\n"
        . "    ecodoc_redis_tls_trusted_certificate $f{'ca.crt'};\n";
    $c .= "    ecodoc_redis_tls_certificate $f{'redis-client.crt'};\n"
        . "    ecodoc_redis_tls_certificate_key $f{'redis-client.key'};\n"
        if $o{client};
    $c .= "    ecodoc_redis_tls_name $o{name};\n" if $o{name};
    return $c;
}

$t->start(
    redis_args => ['--tls-port', $tls_port,
        '--tls-cert-file', $f{'redis.crt'}, '--tls-key-file', $f{'redis.key'},
        '--tls-ca-cert-file', $f{'ca.crt'}, '--tls-auth-clients', 'no',
        '--bind', '127.0.0.1', '-::1'],
    redis_conf => conf());

# --- the server verified: signup, login, password change, the gate
my $u = $t->ready_user('alice');
my $r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
is($r->{status}, 200, 'TLS: the gate lets a session in');
is(backend_user($r), 'alice', '... as alice');
$r = $t->logout('alice', $u->{cookie});
$r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
isnt($r->{status}, 200, 'TLS: after the logout the session is refused');
like($t->error_log, qr/connected to Redis 127\.0\.0\.1:$tls_port over TLS/,
    '... the error log says the link is TLS');
my @gate = grep { /cmd=(evalsha|getex)/ }
    split /\n/, $t->redis_cmd('CLIENT', 'LIST');
ok(@gate && !grep({ !/ laddr=127\.0\.0\.1:$tls_port / } @gate),
    'Redis saw the module\'s commands arrive on its TLS port only')
    or diag(join("\n", @gate));

# the name checked may be a DNS name of the certificate
$t->nginx_reload(redis_conf => conf(name => 'localhost'));
$r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 303, 'TLS, ecodoc_redis_tls_name localhost: login works');
my $ck = cookie($r);
my ($log0, $log);

# --- an IPv6 address: its certificate's IP address ::1, not "[::1]"
SKIP: {
    IO::Socket::IP->new(PeerHost => '::1', PeerPort => $tls_port,
        Timeout => 3) or skip('no IPv6 loopback', 3);
    $t->nginx_reload(redis_conf => conf(host => '[::1]'));
    $log0 = length $t->error_log;
    $r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
    is($r->{status}, 200, 'ecodoc_redis [::1]:port over TLS: the gate works');
    $log = substr($t->error_log, $log0);
    like($log, qr/connected to Redis \[::1\]:$tls_port over TLS/,
        '... connected over IPv6') or diag($log);
    unlike($log, qr/certificate does not match/, '... the address matched')
        or diag($log);
}

# --- a Redis that asks for a client certificate
$t->redis_cmd('CONFIG', 'SET', 'tls-auth-clients', 'yes');
$t->nginx_reload(redis_conf => conf(client => 1));
$r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 303, 'client certificate: login works');
$ck = cookie($r);
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 200, '... and the gate');

$t->nginx_reload(redis_conf => conf());
my $count = $t->backend_requests;
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 503, 'no client certificate where Redis wants one: 503');
is($t->backend_requests, $count, '... never the backend');
$t->redis_cmd('CONFIG', 'SET', 'tls-auth-clients', 'no');

# --- a Redis whose certificate another CA issued
$t->spawn('redis-other', $t->path('redis-other.log'),
    Ecodoc::Test::which("redis-server"), "--port", 0, '--bind', '127.0.0.1',
    '--tls-port', $other_port, '--tls-cert-file', $f{'redis-other.crt'},
    '--tls-key-file', $f{'redis-other.key'}, '--tls-auth-clients', 'no',
    '--save', '', '--appendonly', 'no', '--dir', $t->path('redis'),
    '--protected-mode', 'no');
$t->wait_port('redis-other', $other_port, 10);

$t->nginx_reload(redis_conf => conf(port => $other_port));
$log0 = length $t->error_log;
$count = $t->backend_requests;
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 503, 'a certificate of another CA: the gate answers 503');
$r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 503, '... the login too');
ok(!defined cookie($r) || cookie($r) eq '', '... with no session');
is($t->backend_requests, $count, '... never the backend');
$log = substr($t->error_log, $log0);
like($log, qr/\[error\].*ecodoc: Redis 127\.0\.0\.1:$other_port: certificate verify error/,
    '... the error log says why') or diag($log);

# --- the right CA, but not the name asked for
$t->nginx_reload(redis_conf => conf(name => 'redis.example.org'));
$log0 = length $t->error_log;
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 503, 'another name than ecodoc_redis_tls_name: 503');
is($t->backend_requests, $count, '... never the backend');
$log = substr($t->error_log, $log0);
like($log, qr/\[error\].*ecodoc: Redis 127\.0\.0\.1:$tls_port: certificate does not match "redis\.example\.org"/,
    '... the error log says why') or diag($log);

# --- and back to the right settings, no restart of Redis
$t->nginx_reload(redis_conf => conf());
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 200, 'the right settings again: the session works');

is($t->crashes, 0, 'no worker crashed');

done_testing();
