#!/usr/bin/perl

# No request's command reaches a server the sentinels named before ROLE
# has said it is the master: a "sentinel" (a script) names the replica of
# a real master and replica; the module connects to it, and asks ROLE,
# again and again as it backs off, while requests of every kind arrive
# (a session's GETEX, the gate's script, a password check's reservation).
# Every one is answered 503, none reaches the backend, and the replica's
# INFO commandstats shows ROLE from the gate and no EVALSHA, GETEX or
# SCRIPT LOAD. Then the real sentinel again: the gate lets in.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);
use Ecodoc::RedisSet;

my $t = Ecodoc::Test->new();
my $set = Ecodoc::RedisSet->pair($t);
my ($master, $replica) = ($set->master, $set->replicas);

# a sentinel that names ADDR as the master: AUTH, SENTINEL
# get-master-addr-by-name, SUBSCRIBE and PING, in Redis' protocol
my $SENTINEL = <<'EOF';
use IO::Select;
use IO::Socket::INET;
my ($port, $ip, $mport) = @ARGV;
$| = 1;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 128, ReuseAddr => 1) or die "listen $port: $!\n";
my $sel = IO::Select->new($l);
my (%buf, %sub);
sub bulk { '$' . length($_[0]) . "\r\n$_[0]\r\n" }
sub answer {
    my ($c, @a) = @_;
    my $cmd = uc($a[0] // '');
    print "$cmd\n";
    return "+OK\r\n" if $cmd eq 'AUTH';
    if ($cmd eq 'SENTINEL') {
        return "*2\r\n" . bulk($ip) . bulk($mport);
    }
    if ($cmd eq 'SUBSCRIBE') {
        $sub{$c} = 1;
        return "*3\r\n" . bulk('subscribe') . bulk($a[1]) . ":1\r\n";
    }
    if ($cmd eq 'PING') {
        return $sub{$c} ? "*2\r\n" . bulk('pong') . bulk('') : "+PONG\r\n";
    }
    return "-ERR unknown command\r\n";
}
while (1) {
    for my $c ($sel->can_read) {
        if ($c == $l) { $sel->add($l->accept); next }
        my $n = sysread($c, my $data, 65536);
        if (!$n) { $sel->remove($c); delete $buf{$c}; delete $sub{$c};
                   close $c; next }
        $buf{$c} .= $data;
        while ($buf{$c} =~ /^\*(\d+)\r\n/) {
            my ($argc, $p, @a) = ($1, length($&));
            my $ok = 1;
            for (1 .. $argc) {
                if (substr($buf{$c}, $p) =~ /^\$(\d+)\r\n/) {
                    my ($len, $h) = ($1, length($&));
                    if (length($buf{$c}) < $p + $h + $len + 2) { $ok = 0; last }
                    push @a, substr($buf{$c}, $p + $h, $len);
                    $p += $h + $len + 2;
                } else { $ok = 0; last }
            }
            last unless $ok;
            substr($buf{$c}, 0, $p) = '';
            syswrite($c, answer($c, @a));
        }
    }
}
EOF

$t->start(redis_set => $set,
    redis_conf => $set->nginx_conf(wait => '1 500ms'),
    ca_redis => ['--redis', $master, '--redis-password', 'redis-pw']);
my $u = $t->ready_user('alice');
$t->cert('bob');
is($t->http(GET => '/', cert => 'alice', cookie => $u->{cookie})->{status},
    200, 'through the real sentinel: the gate lets in');

my ($port) = Ecodoc::Test::free_ports(1);
my ($rip, $rport) = split /:/, $replica;
$t->spawn('fake-sentinel', $t->path('fake-sentinel.log'), $^X, '-e',
    $SENTINEL, $port, $rip, $rport);
$t->wait_port('fake-sentinel', $port, 10);

is($set->role($replica), 'slave', "$replica is a replica");
$set->cmd($replica, 'CONFIG', 'RESETSTAT');
my $log0 = length $t->error_log;
$t->nginx_reload(redis_conf => "    ecodoc_redis_sentinel ecodoc 127.0.0.1:$port;\n"
    . "    ecodoc_redis_sentinel_password sentinel-pw;\n"
    . "    ecodoc_redis_password redis-pw;\n"
    . "    ecodoc_redis_wait 1 500ms;\n");

# requests for 6 s: the module connects again as its backoff (up to 2 s)
# allows, and a request that comes meanwhile is queued behind the setup
my (%seen, $n);
my $backend = $t->backend_requests;
my $deadline = time + 6;
while (time < $deadline) {
    my @r = (
        $t->http(GET => '/', cert => 'alice', cookie => $u->{cookie}),
        $t->http(GET => '/', cert => 'bob'),
        scalar $t->login('alice', 'alice', 'Not-the-password-1'),
    );
    $seen{ $_->{status} }++ for @r;
    $n += @r;
    sleep 0.05;
}
is(join(' ', sort keys %seen), '503',
    "a replica named: every one of $n requests answered 503");
is($t->backend_requests, $backend, '... none reached the backend');

my $log = substr($t->error_log, $log0);
my $asked = () = $log =~ /Redis \Q$replica\E is not the master \(ROLE: slave\)/g;
ok($asked >= 2, "... the module asked the replica ROLE ($asked times)")
    or diag($log);

my %stats = map { /^cmdstat_([^:]+):(.*)$/ ? ($1 => $2) : () }
    split /\r?\n/, $set->cmd($replica, 'INFO', 'commandstats');
ok($stats{role}, "... the replica saw ROLE ($stats{role})")
    or diag(explain(\%stats));
ok(!grep({ exists $stats{$_} } qw(evalsha eval getex script|load)),
    '... and no EVALSHA, EVAL, GETEX or SCRIPT LOAD')
    or diag(explain(\%stats));
is($t->failures('alice') // 0, 0, '... no failure counted for alice');

$t->nginx_reload(redis_conf => $set->nginx_conf(wait => '1 500ms'));
is($t->http(GET => '/', cert => 'alice', cookie => $u->{cookie})->{status},
    200, 'the real sentinel again: the gate lets in');

is($t->crashes, 0, 'no worker crashed');

done_testing();
