#!/usr/bin/perl

# A session ends when unused for ecodoc_session_timeout, and however much
# it is used once ecodoc_session_lifetime has passed since the login.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start(directives => {
    ecodoc_session_timeout => '2s',
    ecodoc_session_lifetime => '5s',
});

my $a = $t->ready_user('alice');
my $get = sub {
    $t->http(GET => '/docs', cert => 'alice', cookie => $_[0])->{status}
};

is($get->($a->{cookie}), 200, 'fresh session passes');
sleep 1;
is($get->($a->{cookie}), 200, 'used again within the idle timeout');
sleep 3;
is($get->($a->{cookie}), 303, 'unused for 3 s > 2 s: sent to the login');

my $c = cookie($t->login('alice', 'alice', $a->{password}));
ok($c, 'logged in again');
my $start = time;
my @seen;
while (time - $start < 8) {
    push @seen, [time - $start, $get->($c)];
    sleep 0.7;
}
ok(!grep({ $_->[0] < 4 && $_->[1] != 200 } @seen),
    'used every 0.7 s: alive for the first 4 s');
ok(grep({ $_->[0] > 6 && $_->[1] == 303 } @seen),
    'past the 5 s lifetime: ended despite the use');

done_testing();
