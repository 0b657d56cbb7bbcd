#!/usr/bin/perl

# STEP1 cannot tell user IDs apart by time: a wrong certificate password
# for a user ID that has none is checked against a hash of the same cost
# as the newest certificate password (P enroll_dummy), not a fixed one.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(server => $t->enroll_server_conf);
$t->enroll_start();

# a cheap cost (2^10) for the certificate passwords
$t->eca('user', 'add', 'known', '--cost', 10);
ok($t->redis_cmd('GET', $t->rkey('enroll_dummy')) =~ /^\$scrypt\$ln=10,/,
    'enroll_dummy: a hash at the cost of the newest certificate password');

sub step1_time {
    my ($user) = @_;
    my $t0 = time;
    my (undef, $r) = $t->enroll_step1($user, 'not-the-password-1');
    my $dt = time - $t0;
    return ($r->{status}, $dt);
}

sub median { my @v = sort { $a <=> $b } @_; $v[@v / 2] }

my (@known, @unknown);
for (1 .. 4) {
    my ($s1, $k) = step1_time('known');
    my ($s2, $u) = step1_time('nobody');
    is($s1, 401, 'a wrong certificate password: 401');
    is($s2, 401, 'an unknown user ID: 401 all the same');
    push @known, $k;
    push @unknown, $u;
}
my ($mk, $mu) = (median(@known), median(@unknown));
diag(sprintf 'STEP1, median: known %.3f s, unknown %.3f s', $mk, $mu);
cmp_ok($mu, '<', 4 * $mk + 0.05,
    'an unknown user ID costs no more than a known one (no fixed 2^17 hash)');

done_testing();
