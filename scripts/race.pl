#!/usr/bin/perl

# The race tester, long form (`make race`): random schedules of clients,
# the administrator and Redis trouble against real nginx (2 workers),
# Redis, ecodoc-ca and the module, each checked against the guarantees
# of DESIGN.md (t/lib/Ecodoc/Race.pm says how).
#
#   ECODOC_MODULE=build/nginx/objs/ngx_http_ecodoc_module.so \
#   ECODOC_CA=build/ecodoc-ca perl scripts/race.pl
#
# Environment:
#   RACE_SEED=N        run the one schedule made from seed N (a replay)
#   RACE_SCHEDULES=N   at most N schedules (default: no limit)
#   RACE_SECONDS=S     start no schedule that could end after S seconds
#                      (default 600)
#   RACE_FIRST_SEED=N  seeds N, N+1, ... (default: from the clock)
#   RACE_STOP=1        stop at the first schedule with a violation
#   ECODOC_KEEP=1      keep the temp dir (and each schedule's logs)
#   ECODOC_NGINX=PATH  the nginx binary (default: nginx in PATH)
#
# Prints a line per schedule, each violation with its seed and the
# command that replays it, then "N schedules, M violations"; exits 1 on
# any violation.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

for my $v (qw(ECODOC_MODULE ECODOC_CA)) {
    die "$v is not set (make race sets it)\n"
        unless defined $ENV{$v} && -e $ENV{$v};
}
for my $bin ((defined $ENV{ECODOC_NGINX} && $ENV{ECODOC_NGINX} ne ''
        ? () : 'nginx'), qw(redis-server openssl)) {
    die "$bin not found in PATH\n"
        unless grep { -x "$_/$bin" } split(/:/, $ENV{PATH} // ''), '/usr/sbin';
}

require Ecodoc::Race;

my $num = sub {
    my ($name) = @_;
    my $v = $ENV{$name};
    return undef unless defined $v && $v ne '';
    die "$name must be a number\n" unless $v =~ /^\d+(?:\.\d+)?\z/;
    return $v;
};

$| = 1;
my $race = Ecodoc::Race->new();
my $sum = $race->run(
    seed       => $num->('RACE_SEED'),
    first_seed => $num->('RACE_FIRST_SEED'),
    schedules  => $num->('RACE_SCHEDULES'),
    seconds    => $num->('RACE_SECONDS') // 600,
    stop       => $ENV{RACE_STOP},
    say        => sub { print @_ },
);

my $t = $sum->{totals};
printf "%d requests (%d reached the backend), %d logins, %d revocations, "
    . "%d locks seen, %d resets, %d deletions, in %.0fs from seed %d\n",
    $t->{requests} // 0, $t->{backend} // 0,
    ($t->{login} // 0) + ($t->{wrong} // 0), $t->{revoked} // 0,
    $t->{locks} // 0, $t->{reset} // 0, $t->{delete} // 0, $sum->{elapsed},
    $sum->{first_seed};
if (my $f = $sum->{first}) {
    printf "first violation in schedule %d (seed %d), after %.0fs\n",
        $f->{schedule}, $f->{seed}, $f->{after};
    print "violating seeds: @{ $sum->{violating} }\n";
}
printf "%d schedules, %d violations\n", $sum->{schedules},
    scalar @{ $sum->{violations} };
exit(@{ $sum->{violations} } ? 1 : 0);
