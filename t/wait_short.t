#!/usr/bin/perl

# A password check whose reservation WAIT did not confirm (ecodoc_redis_wait
# 1, the one replica stopped) is answered 503, nothing checked, and the
# reservation is given back at once: ten tries during the outage lock
# nobody, count no failure and leave no reservation to lapse into one
# (a reservation never finished still counts: t/fail_closed.t). Once the
# replica is back the right password logs in.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Ecodoc::Test qw(:all);
use Ecodoc::RedisSet;

my $t = Ecodoc::Test->new();
my $set = Ecodoc::RedisSet->pair($t);
my ($master, $replica) = ($set->master, $set->replicas);

$t->start(redis_set => $set,
    redis_conf => $set->nginx_conf(wait => '1 300ms'),
    ca_redis => ['--redis', $master, '--redis-password', 'redis-pw']);

my $u = $t->ready_user('alice');
my $pending = $t->rkey('user:alice:pending');
is($t->failures('alice') // 0, 0, 'alice: no failure yet');

# the reservations pending, once the give-backs sent with the 503s (no
# request waits for them) have reached Redis: up to 3 s
sub pending_after_503 {
    my $deadline = time + 3;
    my $n;
    while (1) {
        $n = $t->redis_cmd('ZCARD', $pending);
        last if $n == 0 || time > $deadline;
        sleep 0.05;
    }
    return $n;
}

# --- the replica stopped: WAIT answers 0 of 1
$set->stop_node($replica);
my $log0 = length $t->error_log;
my @status;
for my $i (1 .. 10) {
    push @status, $t->login('alice', 'alice', "Not-the-password-$i",
        lang => 'en')->{status};
}
is(join(' ', @status), join(' ', (503) x 10),
    'no replica: ten wrong passwords, ten 503');
is($t->failures('alice') // 0, 0, '... none checked, no failure counted');
ok(!$t->is_locked('alice'), '... alice is not locked');
is(pending_after_503(), 0,
    '... and no reservation is left to lapse into a failure');
my $log = substr($t->error_log, $log0);
my $given = () = $log =~ /ecodoc: the reservation of "alice" given back/g;
is($given, 10, '... the error log says each was given back') or diag($log);
like($log, qr/a security write reached 0 of 1 replicas within 300 ms/,
    '... and why') or diag($log);
ok(!grep({ $_->{event} =~ /^login_(failed|lost)$/ } $t->audit),
    '... the audit has no failed or lost check');

my $r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 503, 'no replica: the right password is answered 503 too');
ok(!defined cookie($r) || cookie($r) eq '', '... with no session');
is(pending_after_503(), 0, '... its reservation given back');

# --- the replica back
$set->restart($replica);
$set->wait_replica($replica, 30);
$set->wait_acked(1, 30);
is($t->failures('alice') // 0, 0, 'replica back: alice has no failure');
ok(!$t->is_locked('alice'), '... is not locked');
$r = $t->login('alice', 'alice', 'Not-the-password-11');
is($r->{status}, 401, '... a wrong password is checked again');
is($t->failures('alice') // 0, 1, '... and counted: the first');
$r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 303, '... and the right one logs in');
is($t->failures('alice') // 0, 0, '... the failures reset');
is($t->redis_cmd('ZCARD', $pending), 0, '... no reservation left');

is($t->crashes, 0, 'no worker crashed');

done_testing();
