#!/usr/bin/perl

# ecodoc-ca user list over a few thousand users (more than one SCAN reply
# and one batch of records): every user listed once, sorted, the columns
# as wide as their widest cell, exactly as the table is specified; a
# malformed record shown and reported; keys that are no user ID skipped.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->redis_start();
my $P = $t->prefix;

# users u00001.. with every state, failures, initial flag and number of
# certificates; a 64-character ID and one of the other characters; a
# failure count wider than its heading
my %user;
for my $i (1 .. 3000) {
    $user{sprintf 'u%05d', $i} = { locked => $i % 7 == 0 ? 1 : 0,
        failures => $i % 6, initial => $i % 3 == 0 ? 1 : 0, certs => $i % 4 };
}
$user{'a' x 64} = { locked => 0, failures => 0, initial => 1, certs => 1 };
$user{'Z.z@x-y_1'} = { locked => 1, failures => 1000000000, initial => 0,
    certs => 2 };

my @cmds;
for my $u (sort keys %user) {
    my $x = $user{$u};
    push @cmds, ['HSET', "${P}user:$u", 'pw', '$scrypt$ln=12,r=8,p=1$x$y',
        'initial', $x->{initial}, 'locked', $x->{locked},
        'failures', $x->{failures}, 'created', 1700000000,
        'changed', 1700000000];
    push @cmds, ['SADD', "${P}user:$u:certs", map { "$u-fp$_" }
        1 .. $x->{certs}] if $x->{certs};
    push @cmds, ['SADD', "${P}user:$u:sessions", 'sid'] if $x->{certs} == 3;
}
load(@cmds);

my $r = $t->ca({ ok => 1 }, 'user', 'list');
is($r->{exit}, 0, 'list: exit 0');
is($r->{err}, '', 'list: nothing on stderr');
my @lines = split /\n/, $r->{out};
is(scalar @lines, 1 + keys %user, 'list: a heading and one line a user');
is_deeply([map { (split ' ')[0] } @lines[1 .. $#lines]], [sort keys %user],
    'list: every user once, sorted');
is($r->{out}, table(\%user), 'list: the table, cell by cell and aligned');

# a malformed record and a key under user: that names no user ID
load(['HSET', "${P}user:zz-bad", 'initial', '0', 'locked', '0'],
    ['SET', "${P}user:not/an/id", 'x']);
$user{'zz-bad'} = { malformed => 1, certs => 0 };
$r = $t->ca({ ok => 1 }, 'user', 'list');
is($r->{exit}, 1, 'list with a malformed record: exit 1');
like($r->{err}, qr/malformed record for user zz-bad: field "pw"/,
    'list: the malformed record is reported');
like($r->{err}, qr/skipped 1 key\(s\) under \Q$P\Euser: that do not name a valid user ID/,
    'list: the key that names no user ID is reported');
is($r->{out}, table(\%user), 'list: the malformed user shown with ?');

# users deleted: gone from the list
load(map { ['DEL', "${P}user:$_"] } grep { /^u0[01]/ } keys %user);
delete $user{$_} for grep { /^u0[01]/ } keys %user;
$r = $t->ca({ ok => 1 }, 'user', 'list');
is($r->{out}, table(\%user), 'list after deleting 1999 users');

done_testing();

sub load {
    my (@c) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->redis_port, Proto => 'tcp', Timeout => 10)
        or die "redis: $!\n";
    Ecodoc::Test::resp_exchange($s, @c);
}

# the table as README's user list prints it: USER STATE FAILURES INITIAL
# CERTS, each column but the last padded to its widest cell and two spaces
sub table {
    my ($users) = @_;
    my @rows = (['USER', 'STATE', 'FAILURES', 'INITIAL', 'CERTS']);
    for my $u (sort keys %$users) {
        my $x = $users->{$u};
        push @rows, $x->{malformed}
            ? [$u, 'malformed', '?', '?', $x->{certs}]
            : [$u, $x->{locked} ? 'locked' : 'active', $x->{failures},
                $x->{initial} ? 'yes' : 'no', $x->{certs}];
    }
    my @w = map { my $j = $_; (sort { $b <=> $a } map { length $_->[$j] }
        @rows)[0] } 0 .. 3;
    return join '', map {
        my $row = $_;
        join('', map { sprintf '%-*s  ', $w[$_], $row->[$_] } 0 .. 3)
            . "$row->[4]\n";
    } @rows;
}
