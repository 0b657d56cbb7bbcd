#!/usr/bin/perl

# The module authenticates to Redis, selects its database and uses a unix
# socket; a Redis that refuses the password fails closed, and the gate
# comes back by itself once the password is right again.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);

$ENV{ECODOC_REDIS_DB} = 3;    # ecodoc-ca, as the module below

my $t = Ecodoc::Test->new()->start(redis_unix => 1, directives => {
    ecodoc_redis_password => '"s3cret pass"',
    ecodoc_redis_database => 3,
});

$t->redis_cmd('CONFIG', 'SET', 'requirepass', 's3cret pass');
$t->{redis_password} = 's3cret pass';

my $a = $t->ready_user('alice');
ok($a->{cookie}, 'sign-up, login and change through AUTH and SELECT 3');
my $r = $t->http(GET => '/', cert => 'alice', cookie => $a->{cookie});
is($r->{status}, 200, 'gated request passes');
is(backend_user($r), 'alice', '... as alice');

is_deeply($t->redis_cmd('KEYS', $t->rkey('*')), [],
    'database 0 holds none of our keys');
ok(scalar @{ $t->redis_cmd('EVAL',
        "redis.call('SELECT', 3) return redis.call('KEYS', ARGV[1])", 0,
        $t->rkey('user:*')) }, 'database 3 holds them');

# the password changes under the module's feet
$t->redis_cmd('CONFIG', 'SET', 'requirepass', 'another one');
$t->{redis_password} = 'another one';
$t->redis_cmd('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
my $before = $t->backend_requests();
my @st;
for (1 .. 3) {
    push @st, $t->http(GET => '/', cert => 'alice',
                       cookie => $a->{cookie})->{status};
    sleep 0.3;
}
is_deeply(\@st, [503, 503, 503], 'AUTH refused: 503, again and again');
is($t->backend_requests(), $before, '... and nothing reached the backend');
like($t->error_log(), qr/Redis refused the connection setup/,
    'error log says why');

$t->redis_cmd('CONFIG', 'SET', 'requirepass', 's3cret pass');
$t->{redis_password} = 's3cret pass';
my $ok;
for (1 .. 30) {
    $r = $t->http(GET => '/', cert => 'alice', cookie => $a->{cookie});
    if ($r->{status} == 200) { $ok = 1; last }
    sleep 0.2;
}
ok($ok, 'the right password again: the gate recovers without a reload');
is(backend_user($r), 'alice', '... as alice');

done_testing();
