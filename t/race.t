#!/usr/bin/perl

# The race tester, short form (t/lib/Ecodoc/Race.pm; `make race` runs the
# long form). First the checker itself, on made-up schedules that break
# each guarantee once; then a bounded number of random schedules against
# real nginx (2 workers), Redis and ecodoc-ca, each a test that fails on
# any violation and names the seed that replays it.
#
# RACE_SCHEDULES (default 12) and RACE_SECONDS (default 60) bound it;
# RACE_SEED=N runs that one schedule.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Race;

my $race = Ecodoc::Race->new();    # skip_all without a module

###############################################################################
# the checker, on made-up records

is_deeply(Ecodoc::Race::plan(7), Ecodoc::Race::plan(7),
    'a seed makes the same schedule twice');
isnt(Ecodoc::Race::describe(Ecodoc::Race::plan(7)),
    Ecodoc::Race::describe(Ecodoc::Race::plan(8)), '... and another seed another');

my ($F, $G) = ('f' x 64, 'e' x 64);
my $P = { seed => 42, t0 => 100 };
my $n = 0;

sub cmd {
    my ($cmd, $ts, $tr, %o) = @_;
    return { kind => 'cmd', cmd => $cmd, user => 'u', args => "$cmd u",
        ts => $ts, tr => $tr, exit => 0, fps => [], %o };
}
sub form {
    my ($kind, $ts, $tr, $outcome, %o) = @_;
    return { kind => $kind, actor => 'u.c0', user => 'u', cert => 'u-c0',
        fp => $F, ts => $ts, tr => $tr, outcome => $outcome, %o };
}
sub gated {
    my ($ts, %o) = @_;
    my $rid = '42-u.c0-' . ++$n;
    return ({ kind => 'gated', actor => 'u.c0', user => 'u', cert => 'u-c0',
        fp => $F, rid => $rid, ts => $ts, tr => $ts + 0.01, status => 200,
        %o }, { target => "/race/$rid", user => 'u', fp => $F, t => $ts });
}
sub ev { return { event => $_[0], user => 'u', fp => $_[2] // $F, t => $_[1],
    seq => 0 } }

# a user added, signed up, logged in, the password changed
my @base = (cmd('add', 100, 100.2), form('signup', 101, 101.3, 'ok'),
    form('login', 101.4, 101.6, 'ok', initial => 1),
    form('change', 101.7, 102, 'ok'));
my @audit = (ev('user_added', 100.1), ev('signup', 101.2), ev('login', 101.5),
    ev('password_changed', 101.9));
my $final = { bad => [], locked => [], failures => { u => 0 }, warns => [] };

sub verdict {
    my (%o) = @_;
    my @recs = (@base, @{ $o{recs} || [] });
    my @backend = @{ $o{backend} || [] };
    my @a = sort { $a->{t} <=> $b->{t} } (@{ $o{audit} || \@audit }, @{ $o{more} || [] });
    my $r = Ecodoc::Race::check($P, \@recs, \@backend, $o{final} || $final, \@a);
    return @{ $r->{violations} };
}

sub case {
    my ($name, $want, %o) = @_;
    my @v = verdict(%o);
    if (defined $want) {
        ok(@v == 1 && $v[0] =~ $want, "checker: $name") or diag(explain(\@v));
    } else {
        is(scalar @v, 0, "checker: $name") or diag(explain(\@v));
    }
}

my ($q, $b) = gated(102.5);
case('a clean schedule: no violation', undef, recs => [$q], backend => [$b]);

($q, $b) = gated(101.65);
case('a request before the initial password was changed',
    qr/initial password .* was not changed yet/, recs => [$q], backend => [$b]);

my $revoke = cmd('revoke_fp', 103, 103.2, fps => [$F], args => "revoke --fingerprint $F");
($q, $b) = gated(103.3);
case('a request sent after the revocation returned', qr/revoked by 'revoke/,
    recs => [$revoke, $q], backend => [$b], more => [ev('revoked', 103.1)]);
($q, $b) = gated(103.1);
case('... but not one sent before it returned', undef,
    recs => [$revoke, $q], backend => [$b], more => [ev('revoked', 103.1)]);
case('a revocation missing from the audit', qr/no 'revoked' record/,
    recs => [$revoke]);

my $locked = form('wrong', 104, 104.1, 'locked');
($q, $b) = gated(104.5);
case('a request sent after a lock was seen', qr/it was locked/,
    recs => [$locked, $q], backend => [$b], more => [ev('lock', 104.05)]);
case('... but not after an unlock began', undef,
    recs => [$locked, cmd('unlock', 104.3, 104.4), $q], backend => [$b],
    more => [ev('lock', 104.05), ev('unlock', 104.35)]);
case('a lock seen but not audited', qr/no 'lock' record/, recs => [$locked]);
($q, $b) = gated(104.5);
case('Redis showing the user locked counts as a lock', qr/it was locked/,
    recs => [{ kind => 'snap', ts => 104, tr => 104.01, bad => [],
        locked => ['u'], failures => {}, warns => [] }, $q],
    backend => [$b]);

($q, $b) = gated(105.5);
case('a request after the deletion returned', qr/it was deleted/,
    recs => [cmd('delete', 105, 105.1), $q], backend => [$b],
    more => [ev('user_deleted', 105.05)]);
($q, $b) = gated(102.5);
$b->{user} = 'v';
case('a request that reached the backend as somebody else',
    qr/as user 'v'/, recs => [$q], backend => [$b]);

case('a login missing from the audit', qr/no 'login' record for u/,
    audit => [grep { $_->{event} ne 'login' } @audit]);
case('a session in Redis for a revoked certificate', qr/its certificate is revoked/,
    final => { %$final, bad => ["revoked|u|$F|abcd"] });
case('a session in Redis of a locked user', qr/its user is locked/,
    final => { %$final, bad => ["locked|u|$F|abcd"] });

my @six = map { ev('login_failed', 106 + $_ / 100) } 1 .. 6;
case('six wrong passwords in a row', undef, more => [@six]);
case('seven wrong passwords in a row', qr/7 wrong passwords of u/,
    more => [@six, ev('login_failed', 106.5)]);
my @inflight = map { form('wrong', 106.9, 107.5, 'wrong') } 1 .. 3;
case('six more after an unlock, three of them in flight at it', undef,
    recs => [@inflight, cmd('unlock', 107, 107.1)],
    more => [@six, ev('unlock', 107.05),
        map { ev('login_failed', 107.2 + $_ / 100) } 1 .. 9]);
case('... but not four more', qr/10 wrong passwords of u/,
    recs => [@inflight, cmd('unlock', 107, 107.1)],
    more => [@six, ev('unlock', 107.05),
        map { ev('login_failed', 107.2 + $_ / 100) } 1 .. 10]);

###############################################################################
# the schedules

my %env = map { $_ => (defined $ENV{$_} && $ENV{$_} =~ /^\d+\z/ ? $ENV{$_} : undef) }
    qw(RACE_SEED RACE_SCHEDULES RACE_SECONDS);
if (!defined $env{RACE_SEED} && defined $env{RACE_SCHEDULES}
    && $env{RACE_SCHEDULES} == 0)
{
    done_testing();    # RACE_SCHEDULES=0: the checker only
    exit 0;
}

my $sum = $race->run(
    seed      => $env{RACE_SEED},
    schedules => $env{RACE_SCHEDULES} // 12,
    seconds   => $env{RACE_SECONDS} // 60,
    say       => sub {
        my $m = join '', @_;
        chomp $m;
        if ($m =~ /^schedule \d+ seed (\d+): .*: (\d+) violations?/) {
            my ($s, $n) = ($1, $2);
            is($n, 0, "seed $s: no violation") or diag($m);
        } elsif ($m =~ /^(?:VIOLATION|  replay)/) {
            diag($m);
        } else {
            note($m);
        }
    },
);

cmp_ok($sum->{schedules}, '>=', 1, "$sum->{schedules} schedules ran");
my $t = $sum->{totals};
cmp_ok($t->{backend} // 0, '>', 0, 'requests reached the backend');
cmp_ok(($t->{login} // 0) + ($t->{wrong} // 0), '>', 0, 'logins succeeded');
note(sprintf('%d schedules, %d violations in %.0fs', $sum->{schedules},
    scalar @{ $sum->{violations} }, $sum->{elapsed}));

done_testing();
