#!/usr/bin/perl

# The module finds the Redis master through Redis Sentinel
# (ecodoc_redis_sentinel) and follows it: a master, two replicas and three
# sentinels on loopback, ecodoc_redis_wait 1. After a graceful switch
# (SENTINEL FAILOVER) and after a SIGKILL of the master, the gate answers
# 503 meanwhile, never the backend, and then works again with no reload
# (the time is printed). A replica answering READONLY is left. With no
# replica reachable a wrong password is not checked and a right one makes
# no session, while the gate's session lookups go on. Then the same set
# of sentinels over TLS.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);
use Ecodoc::RedisSet;

my $BOUND = 20;    # seconds: the loose bound on the gate's recovery

my $t = Ecodoc::Test->new();
plan(skip_all => 'no redis-sentinel (Debian package redis-sentinel)')
    unless Ecodoc::Test::which('redis-sentinel');

my $set = Ecodoc::RedisSet->new($t, replicas => 2, sentinels => 3,
    password => 'redis-pw', sentinel_password => 'sentinel-pw',
    down_after => 1000, failover_timeout => 3000);
my $first = $set->master;

# ecodoc-ca only adds the users, before any switch: the master of now
$t->start(redis_set => $set,
    redis_conf => $set->nginx_conf(wait => '1 500ms'),
    ca_redis => ['--redis', $first, '--redis-password', 'redis-pw']);

my $u = $t->ready_user('alice');
my $r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
is($r->{status}, 200, 'through the sentinels: login, and the gate lets in');
like($t->error_log,
    qr/\[notice\].*ecodoc: redis master of "ecodoc" is now \Q$first\E/,
    '... the error log names the master found');

# polls the gate until the module names the new master and lets alice's
# session in through it. Meanwhile every answer is 503, or 200 for alice
# while the old master still serves her session (a graceful switch leaves
# it a master for a moment); a request without a session never reaches
# the backend.
sub recovery {
    my ($what, $t0, $new) = @_;
    my (%seen, $leak, $wrong);
    my $deadline = $t0 + $BOUND + 10;
    while (time < $deadline) {
        my $n = $t->backend_requests;
        my $x = $t->http(GET => '/', cert => 'alice', timeout => 5);
        $leak++ if $x->{status} == 200 || $t->backend_requests != $n;
        my $named = $t->error_log
            =~ /ecodoc: redis master of "ecodoc" is now \Q$new\E/;
        $x = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie},
            timeout => 5);
        $seen{ $x->{status} }++;
        $wrong++ if $x->{status} == 200 && (backend_user($x) // '') ne 'alice';
        if ($x->{status} == 200 && $named) {
            my $secs = time - $t0;
            diag(sprintf "%s: the module follows %s, the gate lets the "
                . "session in after %.2f s (answers meanwhile: %s)", $what,
                $new, $secs,
                join(', ', map { "$_ x$seen{$_}" } sort keys %seen));
            ok($secs < $BOUND, "$what: recovered within ${BOUND}s, no reload");
            ok(!grep({ $_ != 200 && $_ != 503 } keys %seen),
                '... every answer meanwhile was 503, or alice let in');
            ok(!$wrong, '... and a 200 was always alice\'s');
            ok(!$leak, '... no request without a session got through');
            return;
        }
        sleep 0.1;
    }
    fail("$what: the gate did not recover within " . ($BOUND + 10) . 's');
}

# --- a replica answers READONLY: the module leaves it (here named
# directly, since the sentinels never name one)
my ($replica) = grep { $_ ne $first } $set->nodes;
is($set->role($replica), 'slave', "$replica is a replica");
$t->nginx_reload(redis_conf => "    ecodoc_redis $replica;\n"
    . "    ecodoc_redis_password redis-pw;\n");
my $log0 = length $t->error_log;
my $n = $t->backend_requests;
$r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
$r = $t->http(GET => '/', cert => 'alice') if $r->{status} == 200;
is($r->{status}, 503, 'a replica: the gate answers 503');
my $log = substr($t->error_log, $log0);
like($log, qr/READONLY.*\n(.*\n)*.*Redis \Q$replica\E: not the master/,
    '... the module reads READONLY and leaves the replica') or diag($log);
$t->nginx_reload(redis_conf => $set->nginx_conf(wait => '1 500ms'));
$r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
is($r->{status}, 200, 'through the sentinels again: the gate lets in');

# --- a graceful switch
my @workers = $t->nginx_workers;
my $t0 = time;
$set->sentinel(($set->sentinel_addrs)[0], 'FAILOVER', 'ecodoc');
my ($second) = $set->wait_new_master($first, 30);
recovery('SENTINEL FAILOVER', $t0, $second);
is(join(' ', $t->nginx_workers), join(' ', @workers),
    '... the same workers: nothing was reloaded');

# --- the master killed
$set->wait_replica($first, 30);
$t0 = time;
my $killed = $set->kill_master;
$r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
is($r->{status}, 503, 'master killed: the gate answers 503 at once');
my ($third) = $set->wait_new_master($killed, 30);
diag(sprintf 'the sentinels promoted %s after %.2f s', $third, time - $t0);
recovery('master killed (SIGKILL)', $t0, $third);
$set->restart($killed);
$set->wait_replica($killed, 30);

# --- WAIT with no replica reachable
my $master = $set->master;
my @replicas = grep { $_ ne $master } $set->nodes;
$set->stop_node($_) for @replicas;
my $failures = $t->failures('alice') // 0;
$log0 = length $t->error_log;

$r = $t->login('alice', 'alice', 'Not-the-password-1');
is($r->{status}, 503, 'no replica: a wrong password is answered 503');
is($t->failures('alice') // 0, $failures,
    '... it was not checked: no failure counted on the master');
$r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 503, 'no replica: the right password is answered 503');
ok(!defined cookie($r) || cookie($r) eq '', '... with no session');
$log = substr($t->error_log, $log0);
like($log, qr/\[error\].*ecodoc: a security write reached 0 of 1 replicas within 500 ms \(WAIT\): not acted on/,
    '... the error log says why') or diag($log);
$r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
is($r->{status}, 200, 'no replica: the gate\'s session lookups go on');

$set->restart($_) for @replicas;
$set->wait_replica($_, 30) for @replicas;
$r = $t->login('alice', 'alice', 'Not-the-password-2');
is($r->{status}, 401, 'replicas back: a wrong password is checked again');
is($t->failures('alice') // 0, $failures + 1, '... and counted');
$r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 303, '... and the right one logs in');

is($t->crashes, 0, 'no worker crashed');
$set->stop;

# --- sentinels and Redis over TLS (no user: a certificate bound to nobody
# gets the gate's verdict from Redis, not a 503)
my $tt = Ecodoc::Test->new();
my $tls = Ecodoc::RedisSet->new($tt, replicas => 1, sentinels => 1,
    quorum => 1, tls => 1, password => 'redis-pw');
$tt->start(redis_set => $tls, redis_conf => $tls->nginx_conf(wait => '1 500ms'));
$tt->cert('carol');
$r = $tt->http(GET => '/', cert => 'carol');
my $m = $tls->master;
isnt($r->{status}, 503, "TLS: the gate's verdict came from Redis ($r->{status})");
like($tt->error_log, qr/ecodoc: redis master of "ecodoc" is now \Q$m\E/,
    '... the master found through a sentinel over TLS');
like($tt->error_log, qr/connected to Redis \Q$m\E over TLS/,
    '... and spoken to over TLS');
is($tt->crashes, 0, 'no worker crashed');

done_testing();
