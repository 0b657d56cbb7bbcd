#!/usr/bin/perl

# The gate's hot path: a cookie costs one GETEX of the session's record
# (its idle timeout renewed), no script; a record that does not let the
# request on is judged by the GATE script. A damaged record fails closed.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my $a = $t->ready_user('alice');
my $b = $t->ready_user('bob');

my ($sid) = @{ $t->redis_cmd('SMEMBERS', $t->rkey('user:alice:sessions')) };
my $skey = $t->rkey("sess:$sid");
my $record = $t->redis_cmd('GET', $skey);
like($record, qr/^$a->{fp} \d+ 0 alice\z/,
    'the record: fingerprint, created, initial 0, user');

my $get = sub {
    my (%o) = @_;
    return $t->http(GET => '/docs', cert => $o{cert} // 'alice',
        defined $o{cookie} ? (cookie => $o{cookie}) : ());
};

# what the gate sent Redis while $code ran
my $sent = sub {
    my ($code) = @_;
    my $before = $t->redis_calls;
    $code->();
    my $after = $t->redis_calls;
    return { map { $_ => ($after->{$_} // 0) - ($before->{$_} // 0) }
        qw(getex evalsha eval) };
};

# --- one command per request, no script for a live session
my $n = $sent->(sub {
    for (1 .. 5) {
        my $r = $get->(cookie => $a->{cookie});
        is(backend_user($r), 'alice', "live session $_: through as alice");
    }
});
is($n->{getex}, 5, 'five requests: five GETEX');
is($n->{evalsha} + $n->{eval}, 0, '... and no script');

$n = $sent->(sub {
    is($get->()->{status}, 303, 'no cookie: to the login');
});
is_deeply([ @$n{qw(getex evalsha)} ], [ 0, 1 ], 'no cookie: the GATE script only');

my $dead = 'A' x 43;
$n = $sent->(sub {
    is($get->(cookie => $dead)->{status}, 303, 'a dead cookie: to the login');
});
is_deeply([ @$n{qw(getex evalsha)} ], [ 1, 1 ],
    'a dead cookie: GETEX, then the GATE script');

# --- the idle timeout is renewed by the GETEX itself
$t->redis_cmd('EXPIRE', $skey, 100);
$get->(cookie => $a->{cookie});
my $ttl = $t->redis_cmd('TTL', $skey);
ok($ttl > 1700, "the request renewed the idle timeout (TTL $ttl)");

# --- the cookie with another certificate: not through, audited
my $last = $t->audit_last_id;
$t->redis_cmd('EXPIRE', $skey, 100);
my $r = $get->(cookie => $a->{cookie}, cert => 'bob');
is($r->{status}, 303, "alice's cookie with bob's certificate: to the login");
cmp_ok($t->redis_cmd('TTL', $skey), '>', 1700,
    '... after its GETEX renewed her idle timeout (docs/behaviour.md)');
ok(grep({ $_->{event} eq 'session_refused' && $_->{user} eq 'alice'
          && $_->{who} eq $t->fingerprint('bob') } $t->refusals),
    '... counted as session_refused (of bob\'s certificate)');
is($get->(cookie => $a->{cookie})->{status}, 200,
    '... and alice keeps her session');

# --- damaged records fail closed
my $through = $t->backend_requests;
my $created = (split / /, $record)[1];
my @bad = (
    [ 'not a record'      => 'banana' ],
    [ 'empty'             => '' ],
    [ "another certificate's" => "$b->{fp} $created 0 alice" ],
    [ 'CRLF in the user'  => "$a->{fp} $created 0 alice\r\nX-Ecodoc-User: root" ],
    [ 'a space for the user' => "$a->{fp} $created 0  " ],
    [ 'no creation time'  => "$a->{fp}  0 alice" ],
    [ 'initial neither 0 nor 1' => "$a->{fp} $created 2 alice" ],
    [ 'upper-case fingerprint' => uc($a->{fp}) . " $created 0 alice" ],
);
for my $case (@bad) {
    my ($name, $value) = @$case;
    $t->redis_cmd('SET', $skey, $value, 'EX', 600);
    $r = $get->(cookie => $a->{cookie});
    ok($r->{status} == 303 || $r->{status} == 403 || $r->{status} == 503,
        "record $name: refused ($r->{status})");
}

$t->redis_cmd('DEL', $skey);
$t->redis_cmd('HSET', $skey, 'user', 'alice', 'fp', $a->{fp});
$r = $get->(cookie => $a->{cookie});
is($r->{status}, 503, 'record of the wrong type: 503');
$t->redis_cmd('DEL', $skey);

is($t->backend_requests, $through, 'damaged records: backend not reached');

# initial 1: the password must be changed first
$t->redis_cmd('SET', $skey, "$a->{fp} $created 1 alice", 'EX', 600);
$r = $get->(cookie => $a->{cookie});
is(hdr($r, 'location'), '/ecodoc/password', 'record initial 1: to the password page');

# past the lifetime: the GATE script drops it
$t->redis_cmd('SET', $skey, "$a->{fp} 1000 0 alice", 'EX', 600);
$r = $get->(cookie => $a->{cookie});
is($r->{status}, 303, 'record past its lifetime: to the login');
is($t->redis_cmd('EXISTS', $skey), 0, '... and dropped');

# the real one back: through again
$t->redis_cmd('SET', $skey, $record, 'EX', 600);
is(backend_user($get->(cookie => $a->{cookie})), 'alice',
    'the record restored: through again');

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
