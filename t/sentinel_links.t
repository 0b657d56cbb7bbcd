#!/usr/bin/perl

# The links to the sentinels and to the master stay sound when a peer
# misbehaves: the cache manager and loader open no link; a subscription
# to +switch-master on a sentinel gone silent (SIGSTOP) is noticed by its
# PING and moved to another sentinel; a plain drop of the master's
# connection (CLIENT KILL) is made again to the same master, with no
# sentinel needed; a "sentinel" that accepts and never answers, listed
# first, is left after ecodoc_redis_timeout and the gate finds the master
# through the next one; and with every sentinel hanging up, the worker
# backs off instead of reconnecting in a loop.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);
use Ecodoc::RedisSet;

my $BOUND = 6;    # seconds: timeout 1s, then the next sentinel

my $t = Ecodoc::Test->new();
plan(skip_all => 'no redis-sentinel (Debian package redis-sentinel)')
    unless Ecodoc::Test::which('redis-sentinel');

my $set = Ecodoc::RedisSet->new($t, replicas => 1, sentinels => 2,
    quorum => 1, password => 'redis-pw', sentinel_password => 'sentinel-pw');
my @sentinels = $set->sentinel_addrs;

# listener(NAME, MODE): a TCP listener on a free port that logs each
# connection it accepts ("accept TIME"), then holds it open and never
# answers (MODE hold) or closes it at once (MODE hangup)
my $LISTENER = <<'EOF';
use IO::Socket::INET;
use Time::HiRes qw(time);
my ($port, $mode) = @ARGV;
$| = 1;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 128, ReuseAddr => 1) or die "listen $port: $!\n";
my @held;
while (my $c = $l->accept) {
    printf "accept %.3f\n", time;
    if ($mode eq 'hangup') { close $c } else { push @held, $c }
}
EOF

sub listener {
    my ($name, $mode) = @_;
    my ($port) = Ecodoc::Test::free_ports(1);
    $t->spawn($name, $t->path("$name.log"), $^X, '-e', $LISTENER, $port,
        $mode);
    $t->wait_port($name, $port, 10);
    return "127.0.0.1:$port";
}

# the accept times a listener logged
sub accepts {
    my ($name) = @_;
    my $log = $t->read_file($t->path("$name.log")) // '';
    my @a = $log =~ /^accept (\S+)$/mg;
    return @a;
}

sub conf {
    my (@addrs) = @_;
    return "    ecodoc_redis_sentinel ecodoc @addrs;\n"
        . "    ecodoc_redis_sentinel_password sentinel-pw;\n"
        . "    ecodoc_redis_password redis-pw;\n"
        . "    ecodoc_redis_wait 1 500ms;\n";
}

# waits until the error log, after offset $from, matches $re
sub log_within {
    my ($from, $re, $secs) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my $log = substr($t->error_log, $from);
        return $1 // 1 if $log =~ $re;
        sleep 0.1;
    }
    return;
}

$t->start(redis_set => $set, redis_conf => conf(@sentinels),
    ca_redis => ['--redis', $set->master, '--redis-password', 'redis-pw']);
my $u = $t->ready_user('alice');
is($t->http(GET => '/', cert => 'alice', cookie => $u->{cookie})->{status},
    200, 'through the sentinels: the gate lets in');

# --- the cache manager and loader open no link
my $master = $set->master;
my $gate_links = sub {
    scalar grep { /cmd=(script\|load|evalsha|getex|role)\b/ }
        split /\n/, $set->cmd($master, 'CLIENT', 'LIST');
};
my $before = $gate_links->();
my $node = $t->node(http => '    proxy_cache_path ' . $t->path('cache')
    . " keys_zone=gate_cache:1m;\n");
my $deadline = time + 10;
sleep 0.1 while time < $deadline
    && $node->error_log !~ /redis master of "ecodoc" is now/;
sleep 1;
is(scalar(my @children = $node->nginx_workers), 3,
    'a node with proxy_cache_path: a worker, a cache manager and a loader');
is($gate_links->() - $before, 1,
    '... the master sees one more connection: the worker\'s only');
$node->nginx_stop;

# --- the subscribed sentinel goes silent: its PING goes unanswered
my $sub = log_within(0, qr/subscribed to \+switch-master on sentinel (\S+)/,
    $BOUND);
ok($sub, "subscribed to +switch-master on sentinel $sub");
my $log0 = length $t->error_log;
$set->signal_sentinel($sub, 'STOP');
my $t0 = time;
my $next = log_within($log0,
    qr/subscribed to \+switch-master on sentinel (\S+)/, 20);
my $secs = time - $t0;
$set->signal_sentinel($sub, 'CONT');
ok($next && $next ne $sub, sprintf('it stops (SIGSTOP): subscribed to '
    . 'another after %.2f s', $secs)) or diag(substr($t->error_log, $log0));
like(substr($t->error_log, $log0),
    qr/\[error\].*sentinel \Q$sub\E: no answer in time on \+switch-master/,
    '... the error log says why');

# --- a plain drop: the same master again, no sentinel needed (a sentinel
# asked now would never answer)
$set->signal_sentinel($_, 'STOP') for @sentinels;
$log0 = length $t->error_log;
$set->cmd($master, 'CLIENT', 'KILL', 'TYPE', 'normal');
ok(log_within($log0, qr/Redis \S+: connection closed by it/, 5),
    'CLIENT KILL: the worker sees its connection closed');
sleep 0.3;
my $r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie});
is($r->{status}, 200,
    '... and lets the session in through the same master, sentinels stopped')
    or diag(substr($t->error_log, $log0));
$set->signal_sentinel($_, 'CONT') for @sentinels;

# --- a sentinel that accepts and never answers, listed first
my $silent = listener('silent', 'hold');
$log0 = length $t->error_log;
$t->nginx_reload(redis_conf => conf($silent, @sentinels));
$t0 = time;
my $status;
while (time < $t0 + $BOUND + 10) {
    $r = $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie},
        timeout => 5);
    $status = $r->{status};
    last if $status == 200;
    sleep 0.1;
}
$secs = time - $t0;
is($status, 200, 'a silent sentinel first: the gate finds the master')
    or diag(substr($t->error_log, $log0));
ok($secs < $BOUND, sprintf('... within %d s (%.2f s)', $BOUND, $secs));
ok(scalar(accepts('silent')) > 1, '... the silent one was asked');
like(substr($t->error_log, $log0),
    qr/\[error\].*ecodoc: sentinel \Q$silent\E: no answer in time/,
    '... and left after ecodoc_redis_timeout, the error log says');
$sub = log_within($log0, qr/subscribed to \+switch-master on sentinel (\S+)/,
    $BOUND);
ok($sub && $sub ne $silent,
    '... the subscription moved on to a sentinel that answers')
    or diag(substr($t->error_log, $log0));

# --- every sentinel hangs up: a backoff, no reconnect storm
my $hangup = listener('hangup', 'hangup');
my $n0 = () = accepts('hangup');
$t->nginx_reload(redis_conf => conf($hangup));
$deadline = time + 10;
sleep 0.1 while time < $deadline && accepts('hangup') == $n0;
sleep 6.5;
my @all = accepts('hangup');
splice @all, 0, $n0;
my $first = $all[0] // time;
my $n = grep { $_ < $first + 6 } @all;
diag("a worker with every sentinel hanging up: $n connections in 6 s");
ok($n >= 3, 'every sentinel hangs up: the worker keeps trying');
ok($n <= 15, '... with a backoff (no more than 15 connections in 6 s)');
like($t->error_log,
    qr/no sentinel named the master "ecodoc": asking again in 4000 ms/,
    '... the error log gives the pause, growing');

is($t->crashes, 0, 'no worker crashed');

done_testing();
