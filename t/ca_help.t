#!/usr/bin/perl

# ecodoc-ca --help says only what the commands take: every option its
# usage lists for a user command, enroll-code and audit is accepted by that
# command (it may then fail for other reasons, never as "unknown option").

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test;

my $t = Ecodoc::Test->new();
$t->redis_start();

my $help = $t->ca('--help');
like($help, qr/^  user add USER /m, '--help lists user add');

# the usage of each command: its lines, continuations joined
my %usage;
my $cmd;
for my $l (split /\n/, $help) {
    if ($l =~ /^  ((?:user \S+|enroll-code|audit))\b(.*)$/) {
        $cmd = $1;
        $usage{$cmd} = $2;
    } elsif (defined $cmd && $l =~ /^\s{6,}(\[.*)$/) {
        $usage{$cmd} .= " $1";
    } else {
        undef $cmd;
    }
}
ok(keys %usage >= 8, 'the usage of ' . scalar(keys %usage) . ' commands');

for my $c (sort keys %usage) {
    my @opts = $usage{$c} =~ /\[(--[a-z0-9-]+)( [A-Z]+)?\]/g;
    while (my ($opt, $arg) = splice @opts, 0, 2) {
        my @args = (split(/ /, $c), $c =~ /^(user|enroll-code)/ ? 'zed' : (),
            $opt, defined $arg ? ('12') : ());
        my $r = $t->ca({}, @args);
        unlike($r->{err}, qr/unknown option/,
            "ecodoc-ca @args: $opt is an option of $c") or diag($r->{err});
    }
}

done_testing();
