#!/usr/bin/perl

# The shared-memory cache: a gated request of a cached session costs no
# Redis command; logout and rotation here end it at once; a change made
# elsewhere (revocation, lock) is seen within "valid".

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(http => "    ecodoc_cache zone=ecodoc_test:1m valid=2s;\n");

my $a = $t->ready_user('alice');
my $get = sub {
    my ($cookie, $cert) = @_;
    $t->http(GET => '/docs', cert => $cert // 'alice', cookie => $cookie);
};

is($get->($a->{cookie})->{status}, 200, 'first request: through Redis');
my $n = $t->gate_calls;
for (1 .. 10) {
    my $r = $get->($a->{cookie});
    is($r->{status}, 200, "cached request $_: 200") if $_ == 1;
    is(backend_user($r), 'alice', '... as alice') if $_ == 1;
}
is($t->gate_calls, $n, 'ten cached requests: no Redis command');

# the cookie with another certificate is not a hit
my $b = $t->ready_user('bob');
$n = $t->gate_calls;
my $r = $get->($a->{cookie}, 'bob');
isnt($r->{status}, 200, "alice's cookie with bob's certificate: refused");
is($t->gate_calls, $n + 2,
    '... after asking Redis (the session record, then the GATE script)');

# logout here forgets the session at once
my $c2 = cookie($t->login('alice', 'alice', $a->{password}));
is($get->($c2)->{status}, 200, 'second session of alice cached');
$t->logout('alice', $c2);
is($get->($c2)->{status}, 303, 'after logout: refused at once');

# a revocation made elsewhere: seen within valid=2s
is($get->($a->{cookie})->{status}, 200, 'alice still in');
$t->eca('revoke', '--fingerprint', $t->fingerprint('alice'));
my $start = time;
my $seen;
while (time - $start < 5) {
    if ($get->($a->{cookie})->{status} == 403) { $seen = time - $start; last }
    sleep 0.2;
}
ok(defined $seen, 'revocation made elsewhere seen');
cmp_ok($seen // 99, '<=', 2.5, '... within valid (2 s)');

done_testing();
