#!/usr/bin/perl

# ecodoc-ca and its enrollment server against a highly available Redis:
# every command family over TLS with the server verified (and a client
# certificate, as Redis asks for one), refused when the server's
# certificate is of another CA or bears another name (nothing written);
# the master found through the sentinels, plain and over TLS; after a
# SIGKILL of the master and a promotion, ecodoc-ca and the running
# enrollment server find the new master by themselves, with what was
# confirmed before the kill still there; `revoke --redis-wait 1:500`
# says "revoked" once a replica has it, and "unconfirmed" with exit 3
# when no replica is left to confirm it; the enrollment site then checks
# no certificate password (503).

use strict;
use warnings;
use utf8;

use Encode ();
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);
use Ecodoc::RedisSet;

my $t = Ecodoc::Test->new();
plan(skip_all => 'no redis-sentinel (Debian package redis-sentinel)')
    unless Ecodoc::Test::which('redis-sentinel');
$t->eca_init();

my $set = Ecodoc::RedisSet->new($t, replicas => 2, sentinels => 3,
    tls => 1, tls_auth_clients => 'yes', password => 'redis-pw',
    sentinel_password => 'sentinel-pw', down_after => 2000,
    failover_timeout => 4000);
# the replicas synchronised: WAIT can count them
$set->wait_replica($_, 30) for grep { $_ ne $set->master } $set->nodes;
my $f = $set->tls_files;
my @tls = ('--redis-tls-ca', $f->{ca}, '--redis-tls-cert', $f->{cert},
    '--redis-tls-key', $f->{key});

# nginx keeps its own Redis; ecodoc-ca and the enrollment server use the
# set through its sentinels, over TLS, each write confirmed by a replica
$t->start(ca_redis => $set->ca_args(wait => '1:500'),
    server => $t->enroll_server_conf);
$t->enroll_start();

# ecodoc-ca with these Redis options instead of the sentinels
sub ca_with {
    my ($redis, @args) = @_;
    local $t->{ca_redis} = $redis;
    return $t->ca({}, @args);
}

sub ca_dir { ('--dir', $t->eca_dir) }

# on the master of the moment
sub exists_key { $set->cmd($set->master, 'EXISTS', $t->rkey($_[0])) }

# --- every command family over TLS, straight to the master
my @direct = ('--redis', $set->master, '--redis-password', 'redis-pw',
    @tls);
my $r = ca_with(\@direct, 'user', 'add', 'alice', '--cost', 12);
is($r->{exit}, 0, 'TLS: user add') or diag($r->{err});
like($r->{out}, qr/^initial password: \S+$/m, '... prints the password');
my ($code) = $r->{out} =~ /^certificate password: (\S+)$/m;
ok($code, '... and a certificate password');
is(exists_key('user:alice'), 1, '... written to the master');
like(ca_with(\@direct, 'user', 'show', 'alice')->{out}, qr/^state: active$/m,
    'TLS: user show');
like(ca_with(\@direct, 'user', 'list')->{out}, qr/^alice\s+active/m,
    'TLS: user list');
is(ca_with(\@direct, 'user', 'unlock', 'alice')->{out},
    "user alice unlocked\n", 'TLS: user unlock');
like(ca_with(\@direct, 'user', 'reset-password', 'alice', '--cost', 12)->{out},
    qr/^initial password: \S+$/m, 'TLS: user reset-password');
like(ca_with(\@direct, 'enroll-code', 'alice', '--cost', 12)->{out},
    qr/^certificate password: \S+$/m, 'TLS: enroll-code');
$t->write_file('p12pw', "secret-p12\n");
$r = ca_with(\@direct, 'issue', 'alice', ca_dir(), '--p12',
    $t->path('alice.p12'), '--p12-password-file', $t->path('p12pw'));
is($r->{exit}, 0, 'TLS: issue') or diag($r->{err});
my ($fp) = ca_with(\@direct, 'certs', 'alice', ca_dir())->{out}
    =~ /^\S+\s+alice\s+valid\s+\S+\s+([0-9a-f]{64})$/m;
ok($fp, 'TLS: certs lists it');
is(exists_key("certinfo:$fp"), 1, '... recorded in Redis');
$r = ca_with(\@direct, 'revoke', '--fingerprint', $fp, ca_dir());
is($r->{exit}, 0, 'TLS: revoke') or diag($r->{err});
like($r->{out}, qr/^revoked: $fp alice$/m, '... says revoked');
is(exists_key("revoked:$fp"), 1, '... and the gate will know');
is(ca_with(\@direct, 'crl', ca_dir())->{exit}, 0, 'TLS: crl');
like(ca_with(\@direct, 'audit')->{out}, qr/revoked/, 'TLS: audit');
like(ca_with(\@direct, 'metrics')->{out}, qr/^ecodoc_users /m,
    'TLS: metrics');
ca_with(\@direct, 'user', 'add', 'gone', '--cost', 12);
is(ca_with(\@direct, 'user', 'delete', 'gone')->{out}, "user gone deleted\n",
    'TLS: user delete');
is(exists_key('user:gone'), 0, '... gone from the master');

# --- refused: another CA, another name, no client certificate
my %bad = (
    'a server certificate of another CA' => [
        qr/the server's certificate is refused: .*certificate/,
        '--redis', $set->master, '--redis-password', 'redis-pw',
        '--redis-tls-ca', $f->{other_ca}, '--redis-tls-cert', $f->{cert},
        '--redis-tls-key', $f->{key}],
    'a server certificate for another name' => [
        qr/the server's certificate is refused: hostname mismatch/,
        @direct, '--redis-tls-name', 'redis.example.org'],
    'no client certificate' => [
        qr/TLS: (?:tlsv13 alert certificate required|Connection reset)/,
        '--redis', $set->master, '--redis-password', 'redis-pw',
        '--redis-tls-ca', $f->{ca}],
);
for my $why (sort keys %bad) {
    my ($re, @opts) = @{ $bad{$why} };
    $r = ca_with(\@opts, 'user', 'add', 'mallory', '--cost', 12);
    is($r->{exit}, 1, "$why: exit 1");
    like($r->{err}, $re, '... says why');
    is($r->{out}, '', '... prints nothing');
    is(exists_key('user:mallory'), 0, '... and writes nothing');
}
$r = ca_with([@direct, '--redis-tls-ca', $t->path('nonexistent.crt')],
    'user', 'show', 'alice');
is($r->{exit}, 1, 'a CA file that is not there: exit 1');
like($r->{err}, qr/--redis-tls-ca \S+nonexistent\.crt: cannot load it: .*No such file/,
    '... says so');
$r = ca_with([@direct, '--redis-tls-key', $f->{server_key}], 'user', 'show',
    'alice');
like($r->{err}, qr/--redis-tls-key \S+: cannot load them: .*key values mismatch/,
    'a key that is not the certificate\'s: says so');
is(ca_with(['--redis-sentinel', 'x'], 'user', 'list')->{exit}, 2,
    'a bad --redis-sentinel: exit 2');
is(ca_with(['--redis-wait', '1:0'], 'user', 'list')->{exit}, 2,
    'a bad --redis-wait: exit 2');
$r = ca_with([@{ $set->ca_args }, '--redis-tls-name', 'redis.example.org'],
    'user', 'add', 'mallory', '--cost', 12);
is($r->{exit}, 1, 'sentinels with another name: exit 1');
like($r->{err}, qr/no Redis master ecodoc found through the sentinels .*sentinel 127\.0\.0\.1:\d+: TLS: the server's certificate is refused: hostname mismatch/,
    '... says why');
is(exists_key('user:mallory'), 0, '... and writes nothing');

# --- through the sentinels, over TLS, each write WAITed for
$r = $t->ca({}, 'user', 'add', 'bob', '--cost', 12, '--site-url',
    $t->origin);
is($r->{exit}, 0, 'sentinels over TLS: user add') or diag($r->{err});
my ($bob_code) = $r->{out} =~ /^certificate password: (\S+)$/m;
my ($jar, $s1) = $t->enroll_step1('bob', $bob_code);
is($s1->{status}, 303, 'the enrollment server: STEP1 through the sentinels');

# --- a plain set through its one sentinel
my $plain = Ecodoc::RedisSet->new($t, replicas => 1, sentinels => 1,
    quorum => 1, name => 'plain');
$plain->wait_replica($_, 30) for grep { $_ ne $plain->master } $plain->nodes;
my @plain = @{ $plain->ca_args(wait => '1:500') };
$r = ca_with(\@plain, 'user', 'add', 'carol', '--cost', 12);
is($r->{exit}, 0, 'a plain set through a sentinel: user add')
    or diag($r->{err});
is($plain->cmd($plain->master, 'EXISTS', $t->rkey('user:carol')), 1,
    '... on its master');
like(ca_with(\@plain, 'user', 'show', 'carol')->{out}, qr/^state: active$/m,
    '... user show');
$r = ca_with([@plain[0, 1], '--redis', $plain->master], 'user', 'list');
is($r->{exit}, 2, '--redis and --redis-sentinel together: exit 2');
$plain->stop;

# --- the master killed: ecodoc-ca and the enrollment server follow
$r = $t->ca({}, 'user', 'add', 'dave', '--cost', 12, '--site-url',
    $t->origin);
my ($dave_code) = $r->{out} =~ /^certificate password: (\S+)$/m;
$r = $t->ca({}, 'user', 'unlock', 'bob');
is($r->{out}, "user bob unlocked\n", 'unlock before the kill: confirmed');
my $old = $set->kill_master;
my ($new, $secs) = $set->wait_new_master($old, 30);
diag(sprintf('new master %s after %.1f s', $new, $secs));
$r = $t->ca({}, 'user', 'show', 'dave');
is($r->{exit}, 0, 'after the failover: ecodoc-ca finds the new master')
    or diag($r->{err});
like($r->{out}, qr/^user: dave$/m,
    '... which has the user added before the kill');
($jar, $s1) = $t->enroll_step1('dave', $dave_code);
is($s1->{status}, 303,
    '... and the enrollment server, still running, takes a STEP1');
ok($t->enroll_running, '... without a restart');

# --- WAIT: revoked once a replica has it; unconfirmed without replicas
# (the master of the moment: a loaded machine may see another failover)
my $master = $set->master;
my @replicas = grep { $_ ne $master && $_ ne $old } $set->nodes;
$set->wait_replica($_, 30) for @replicas;
$r = $t->ca({}, 'issue', 'dave', ca_dir(), '--p12', $t->path('dave.p12'),
    '--p12-password-file', $t->path('p12pw'));
is($r->{exit}, 0, 'issue on the new master') or diag($r->{err});
my @fps = map { /^\S+\s+dave\s+valid\s+\S+\s+([0-9a-f]{64})$/m ? $1 : () }
    split /\n/, $t->ca('certs', 'dave', ca_dir());
is(scalar @fps, 1, '... one certificate');
$r = $t->ca({}, 'revoke', '--fingerprint', $fps[0], ca_dir());
is($r->{exit}, 0, 'revoke --redis-wait 1:500 with a replica: exit 0')
    or diag($r->{err});
like($r->{out}, qr/^revoked: $fps[0] dave$/m, '... says revoked');

$set->stop_node($_) for @replicas;
$r = $t->ca({}, 'issue', 'dave', ca_dir(), '--p12', $t->path('dave2.p12'),
    '--p12-password-file', $t->path('p12pw'));
is($r->{exit}, 3, 'issue without a replica: exit 3');
like($r->{err}, qr/record of the certificate: written to the Redis master at \Q$master\E .*not confirmed by 1 replica within 500 ms/,
    '... the record not confirmed');
ok(!-e $t->path('dave2.p12'), '... and no certificate handed out');
($jar, $s1) = $t->enroll_step1('dave', $dave_code);
is($s1->{status}, 503,
    'STEP1 without a replica: 503, the password not checked');
$r = $t->ca({}, 'revoke', '--user', 'dave', '--reason', 'keyCompromise',
    ca_dir());
is($r->{exit}, 3, 'revoke without a replica: exit 3');
unlike($r->{out}, qr/^revoked/m, '... never says revoked');
like($r->{out}, qr/^unconfirmed: [0-9a-f]{64} dave$/m,
    '... says unconfirmed');
like($r->{err}, qr/the revocation: written to the Redis master at \Q$master\E \(master ecodoc\), but not confirmed by 1 replica within 500 ms \(WAIT answered 0\)/,
    '... and why');
is(exists_key("revoked:$fps[0]"), 1, '... though the master has it');
$r = $t->ca({}, 'user', 'unlock', 'dave');
is($r->{exit}, 3, 'unlock without a replica: exit 3');
is($r->{out}, '', '... not reported done');

$set->stop;
done_testing();
