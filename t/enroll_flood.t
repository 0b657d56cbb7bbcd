#!/usr/bin/perl

# A flood of STEP1 posts with made-up user IDs does not hold a real user
# for long: checks run one at a time, and a post that cannot get its turn
# within --check-wait seconds is answered 503 "try again" with Retry-After
# instead of queueing without end (it was 25 s for a real STEP1 behind 40
# flooding clients).

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(server => $t->enroll_server_conf);
$t->enroll_start('--check-wait', 1);

# checks of 2^15 (32 MiB, about a tenth of a second each, more when busy)
my $out = $t->eca('user', 'add', 'real', '--cost', 15);
my ($code) = $out =~ /^certificate password: (\S+)$/m;

my @res = $t->parallel(13, sub {
    my ($i, $ready) = @_;
    my $jar = {};
    my $get = $t->enroll_get('/enroll/', $jar, lang => 'en');
    $ready->();
    my $t0 = time;
    my ($user, $pw) = $i == 12 ? ('real', $code) : ("flood$i", 'guess');
    select(undef, undef, undef, 0.3) if $i == 12;     # behind the flood
    my $r = $t->enroll_post('/enroll/step1', $jar,
        [user => $user, password => $pw], csrf => form_token($get),
        lang => 'en', timeout => 60);
    return join ' ', $r->{status}, sprintf('%.2f', time - $t0),
        hdr($r, 'retry-after') // '-',
        $r->{text} =~ /Too many requests are being checked/ ? 'busy' : '-';
}, timeout => 90);

my @flood = map { [split / /] } @res[0 .. 11];
my $real = [split / /, $res[12]];
diag("flood: @res[0 .. 11]");
diag("real:  $res[12]");

my @busy = grep { $_->[0] == 503 } @flood;
ok(@busy >= 1, scalar(@busy) . ' of 12 flooding posts told to try again');
ok(!grep({ $_->[0] != 503 && $_->[0] != 401 } @flood),
    '... the others refused as wrong (401)');
ok(!grep({ $_->[3] ne 'busy' || $_->[2] ne '1' } @busy),
    '... with the page that says so and Retry-After: 1');
ok(!grep({ $_->[1] > 1 + 1.5 } @busy),
    '... none of them after much longer than --check-wait');
ok($real->[0] == 303 || ($real->[0] == 503 && $real->[3] eq 'busy'),
    "the real user's STEP1 in the flood: $real->[0]");
cmp_ok($real->[1], '<', 5, '... answered within seconds, not after the queue');

# after the flood, at once
my ($jar, $r) = $t->enroll_step1('real', $code);
is($r->{status}, 303, 'after the flood the real user passes STEP1');

done_testing();
