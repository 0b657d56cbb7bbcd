#!/usr/bin/perl

# Doubt fails closed and costs the user nothing: a stored hash that can't
# be checked, or one whose parameters would exhaust memory, answers 503
# and is never counted as a wrong password; a reset between the check of
# a password and its record wins. A write refused for want of replicas
# (NOREPLICAS) is a failure, never a success.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my $a = $t->ready_user('alice');
my $key = $t->rkey('user:alice');
my $good = $t->redis_cmd('HGET', $key, 'pw');

for my $case (['malformed', 'not-a-hash'],
              ['truncated', substr($good, 0, length($good) - 5)],
              ['4 GiB of scrypt', '$scrypt$ln=22,r=8,p=1$' . (split /\$/, $good)[3]
                                  . '$' . (split /\$/, $good)[4]])
{
    my ($what, $pw) = @$case;
    $t->redis_cmd('HSET', $key, 'pw', $pw);
    for my $i (1 .. 7) {
        my $r = $t->login('alice', 'alice', $a->{password}, lang => 'en');
        is($r->{status}, 503, "$what stored hash, login $i: 503") if $i == 1;
        last if $r->{status} != 503;
    }
    is($t->failures('alice'), 0, "$what: no failure counted");
    ok(!$t->is_locked('alice'), "$what: seven tries lock nobody");
    is($t->redis_cmd('ZCARD', "$key:pending"), 0,
        "$what: every reservation given back");
}

$t->redis_cmd('HSET', $key, 'pw', $good);
is($t->login('alice', 'alice', $a->{password})->{status}, 303,
    'the good hash back: login works');

# --- outcomes lost: reservations 121 s old, as a worker that died while
# hashing (or a master lost before a replica had the outcome) leaves them
my $b = $t->ready_user('bob');
my $bk = $t->rkey('user:bob');
my $old = $t->redis_cmd('TIME')->[0] - 121;
$t->redis_cmd('ZADD', "$bk:pending", $old, 'lost-1', $old, 'lost-2');
my $r = $t->login('bob', 'bob', 'wrong-password-1');
is($r->{status}, 401, 'a wrong password after two lost checks: 401');
is($t->failures('bob'), 3, '... the two lost checks counted as failures');
is($t->redis_cmd('ZCARD', "$bk:pending"), 0, '... and removed');
ok(scalar(grep { $_->{event} eq 'login_lost' && $_->{user} eq 'bob' }
    $t->audit), '... the audit says so');
$t->redis_cmd('ZADD', "$bk:pending", $old, "lost-$_") for 3 .. 5;
$r = $t->login('bob', 'bob', $b->{password});
is($r->{status}, 403, 'three more lost: six, the right password is refused');
ok($t->is_locked('bob'), '... bob is locked');
is($t->http(GET => '/', cert => 'bob', cookie => $b->{cookie})->{status},
    403, '... and his session ended');

# --- a master short of replicas (min-replicas-to-write) refuses writes
# with -NOREPLICAS: a failed write, never a success, and the master kept
$t->redis_cmd('CONFIG', 'SET', 'min-replicas-to-write', 1);
my $failures = $t->failures('alice');
my $log0 = length $t->error_log;
$r = $t->login('alice', 'alice', 'wrong-password-9');
is($r->{status}, 503, 'NOREPLICAS: a wrong password is answered 503');
is($t->failures('alice'), $failures, '... and not counted');
$r = $t->login('alice', 'alice', $a->{password});
is($r->{status}, 503, 'NOREPLICAS: the right password is answered 503');
ok(!defined cookie($r) || cookie($r) eq '', '... with no session');
my $log = substr($t->error_log, $log0);
like($log, qr/\[error\].*ecodoc: Redis error: NOREPLICAS/,
    '... the error log says why') or diag($log);
unlike($log, qr/not the master/, '... the master is not left for it');
$t->redis_cmd('CONFIG', 'SET', 'min-replicas-to-write', 0);
is($t->login('alice', 'alice', $a->{password})->{status}, 303,
    'min-replicas-to-write 0 again: login works');

ok(!$t->crashes, 'no worker crashed');

done_testing();
