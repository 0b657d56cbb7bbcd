#!/usr/bin/perl

# What operators see: ecodoc_metrics counts a known journey exactly
# (sign-ups, six wrong passwords and the lock, an unlock, logins, a
# logout, a revocation, Redis stopped and started) over two workers and a
# reload; ecodoc_health follows Redis; $ecodoc_status in the JSON access
# log of conf/ecodoc-log.conf agrees with the counters; ecodoc-ca metrics
# counts what Redis holds; promtool accepts both outputs and
# conf/alerts.yml.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use List::Util qw(sum0);
use Test::More;
use Ecodoc::Test qw(:all);

my $ROOT = "$FindBin::Bin/..";
my $PROMTOOL = Ecodoc::Test::which('promtool');
my $NO_PROMTOOL = 'promtool not found (Debian package prometheus, which '
    . '`make test` installs)';
diag($NO_PROMTOOL) unless $PROMTOOL;

my $t = Ecodoc::Test->new();
$t->eca_init();

# the whole nginx.conf is the harness' (t/lib/Ecodoc/Test.pm) with two
# workers and this:
$t->start(workers => 2,
    http => "    include $ROOT/conf/ecodoc-log.conf;\n",
    server => <<'EOF');
        access_log %%DIR%%/access.json ecodoc_json;

        location = /metrics {
            ecodoc_metrics;
            allow 127.0.0.1;
            deny all;
        }

        location = /health {
            ecodoc_health;
        }
EOF

# ---------------------------------------------------------------------------
# scraping, and what each counter should say

# series => value, from the text; "HELP"/"TYPE" lines checked on the way
sub parse {
    my ($text) = @_;
    my (%m, %type);
    for my $l (split /\n/, $text) {
        if ($l =~ /^# TYPE (\S+) (counter|gauge|histogram)$/) {
            $type{$1} = $2;
        } elsif ($l =~ /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/) {
            $m{$1} = $2;
        } elsif ($l !~ /^# HELP \S+ \S/) {
            fail("a line of the exposition format: '$l'");
        }
    }
    return (\%m, \%type);
}

my $scrapes = 0;

sub promtool_ok {
    my ($what, $text) = @_;
    SKIP: {
        skip $NO_PROMTOOL, 1 unless $PROMTOOL;
        my $f = $t->write_file("promtool.$scrapes.txt", $text);
        my $out = `$PROMTOOL check metrics < $f 2>&1`;
        is($? >> 8, 0, "promtool check metrics accepts $what")
            or diag($out);
    }
}

sub scrape {
    my $r = $t->http(GET => '/metrics');
    is($r->{status}, 200, 'ecodoc_metrics answers 200') or diag($r->{raw});
    like(hdr($r, 'content-type') // '', qr{^text/plain; version=0\.0\.4},
        '... in the text format 0.0.4') if $scrapes == 0;
    promtool_ok('ecodoc_metrics', $r->{body}) if $scrapes++ % 4 == 0;
    my ($m) = parse($r->{body});
    return $m;
}

my %want;       # the exactly known counters, cumulative
my $prev;       # the last scrape

sub bump {
    my (%d) = @_;
    $want{$_} += $d{$_} for keys %d;
}

sub gate { bump(qq(ecodoc_gate_requests_total{verdict="$_[0]"}) => $_[1]) }
sub cmd { bump(qq(ecodoc_redis_commands_total{command="$_[0]"}) => $_[1]) }
sub form {
    bump(qq(ecodoc_page_submissions_total{page="$_[0]",result="$_[1]"})
        => $_[2]);
}
sub hashes {
    bump(map { $_ => $_[0] } qw(ecodoc_password_hash_duration_seconds_count));
}

# what depends on timing or on which worker took a connection: checked
# apart (invariants, sums)
my $FREE = qr/^ecodoc_redis_commands_total\{command="(?:setup|ping)"\}$
    |^ecodoc_redis_latency_seconds_(?:bucket|sum|count)
    |^ecodoc_password_hash_duration_seconds_(?:bucket|sum)
    |^ecodoc_redis_errors_total\{reason="(?:unavailable|lost)"\}$/x;

sub non_setup_commands {
    my ($m) = @_;
    return sum0(map { $m->{$_} } grep {
        /^ecodoc_redis_commands_total\{/ && !/"setup"/ } keys %$m);
}

sub v {
    my ($m, $k) = @_;
    return $m->{$k} // 0;
}

# every counter as %want says (0 when it says nothing), and the invariants
sub check {
    my ($step) = @_;
    my $m = scrape();
    my @bad;
    for my $k (sort keys %$m) {
        next if $k =~ $FREE;
        my $w = $want{$k} // 0;
        push @bad, "$k = $m->{$k}, not $w" if $m->{$k} != $w;
    }
    is(join("\n", @bad), '', "$step: every counter as the journey says");
    # each command a request sent got an answer or an error, or timed out
    is(v($m, 'ecodoc_redis_latency_seconds_count'),
        non_setup_commands($m)
        - v($m, 'ecodoc_redis_errors_total{reason="lost"}')
        - v($m, 'ecodoc_redis_timeouts_total'),
        "$step: Redis' answers timed = commands sent - lost - timed out");
    is(v($m, 'ecodoc_password_hash_duration_seconds_count'),
        v($m, 'ecodoc_password_hash_duration_seconds_bucket{le="+Inf"}'),
        "$step: the hashing histogram's count is its +Inf bucket");
    is(v($m, 'ecodoc_password_hashes_in_flight')
        + v($m, 'ecodoc_password_hashes_waiting'), 0,
        "$step: no hashing in flight or waiting");
    $prev = $m;
    return $m;
}

# the JSON access log since a mark
my $log_mark = 0;

sub log_entries {
    my ($since) = @_;
    my $text = $t->read_file('access.json') // '';
    my @e;
    for my $l (split /\n/, substr($text, $since // 0)) {
        my $e = eval { JSON::PP::decode_json($l) };
        ok(0, "a JSON line in the access log: $l") unless $e;
        push @e, $e if $e;
    }
    return @e;
}

sub log_size { length($t->read_file('access.json') // '') }

# GETs of / with a session, some at once, until each worker has let one
# through since the mark; returns the number that answered 200 and 503
sub until_both_workers {
    my ($cookie, $cert, $what) = @_;
    my $mark = log_size();
    my ($ok, $unavailable) = (0, 0);
    my %seen;
    for my $round (1 .. 40) {
        my @st = $t->parallel(4, sub {
            my ($i, $ready) = @_;
            $ready->();
            return $t->http(GET => '/', cert => $cert,
                cookie => $cookie)->{status};
        });
        $ok += grep { $_ eq '200' } @st;
        $unavailable += grep { $_ eq '503' } @st;
        is(scalar(grep { !/^(?:200|503)$/ } @st), 0,
            "$what: only 200 or 503") or diag("@st");
        $seen{ $_->{worker} } = 1 for grep {
            $_->{uri} eq '/' && $_->{ecodoc_status} eq 'ok'
        } log_entries($mark);
        last if keys %seen == 2;
        sleep 0.2;
    }
    is(scalar(keys %seen), 2, "$what: both workers let requests through");
    return ($ok, $unavailable);
}

# ---------------------------------------------------------------------------
# the journey

my $m0 = check('at start: nothing counted yet');
is(scalar(grep { $m0->{$_} != 0 } keys %$m0), 0, 'at start: every series 0');
is(scalar(grep { /^ecodoc_gate_requests_total\{/ } keys %$m0), 9,
    'nine gate verdicts, each a series');

my $r = $t->http(GET => '/metrics');
is($r->{status}, 200, 'ecodoc_metrics needs no certificate');
$r = $t->http(POST => '/metrics', form => [a => 1]);
is($r->{status}, 405, 'ecodoc_metrics: POST 405');

# --- sign-ups: add, sign up, log in with the initial password, change it
# (the change page's GET and POST each ask the GATE script whose session
# it is)
my %u = map { $_ => $t->ready_user($_) } qw(alice bob carol);
form($_, 'done', 3) for qw(signup login password);
bump('ecodoc_sessions_created_total' => 6);
cmd('gate', 6);
cmd('reserve', 9);
cmd('finish', 9);
hashes(9);
check('three users ready');

# --- the gate
for (1 .. 3) {
    $r = $t->http(GET => '/', cert => 'alice', cookie => $u{alice}{cookie});
    is($r->{status}, 200, "alice's session: 200 ($_)");
}
gate('ok', 3);
cmd('session', 3);
$r = $t->http(GET => '/');
is($r->{status}, 403, 'no certificate: 403');
gate('nocert', 1);
$r = $t->http(GET => '/', cert => 'alice');
is($r->{status}, 303, 'no cookie: to the login page');
gate('nosession', 1);
cmd('gate', 1);
$r = $t->http(POST => '/ecodoc/login', cert => 'alice',
    form => [user => 'alice', password => $u{alice}{password}]);
is($r->{status}, 403, 'a login form without its token: 403');
form('login', 'invalid_form', 1);
check('the gate');

# --- six wrong passwords lock bob; the right one is refused then
for my $i (1 .. 6) {
    $r = $t->login('bob', 'bob', "Wrong-password-$i");
    is($r->{status}, $i < 6 ? 401 : 403, "bob's wrong password $i");
}
ok($t->is_locked('bob'), 'bob is locked');
form('login', 'wrong_password', 5);
form('login', 'locked', 1);
bump('ecodoc_lockouts_total' => 1);
cmd('reserve', 6);
cmd('finish', 6);
hashes(6);
$r = $t->login('bob', 'bob', $u{bob}{password});
is($r->{status}, 403, 'bob locked: the right password refused');
form('login', 'locked', 1);
cmd('reserve', 1);
$r = $t->http(GET => '/', cert => 'bob', cookie => $u{bob}{cookie});
is($r->{status}, 403, "bob locked: his session ended, the gate says so");
gate('locked', 1);
cmd('session', 1);
cmd('gate', 1);
check('the lock');

# --- unlocked, bob logs in again
$t->ca('user', 'unlock', 'bob');
$r = $t->login('bob', 'bob', $u{bob}{password});
is($r->{status}, 303, 'bob unlocked: login');
my $bob_cookie = cookie($r);
form('login', 'done', 1);
bump('ecodoc_sessions_created_total' => 1);
cmd('reserve', 1);
cmd('finish', 1);
hashes(1);
$r = $t->http(GET => '/', cert => 'bob', cookie => $bob_cookie);
is($r->{status}, 200, "bob's new session: 200");
gate('ok', 1);
cmd('session', 1);
check('the unlock');

# --- alice logs out (the confirmation page asks whose session it is)
$r = $t->logout('alice', $u{alice}{cookie});
is($r->{status}, 200, 'alice logs out');
form('logout', 'done', 1);
cmd('gate', 1);
cmd('logout', 1);
$r = $t->http(GET => '/', cert => 'alice', cookie => $u{alice}{cookie});
is($r->{status}, 303, "alice's old cookie: to the login page");
gate('nosession', 1);
cmd('session', 1);
cmd('gate', 1);
check('the logout');

# --- bob's certificate revoked
$t->eca('revoke', '--fingerprint', $u{bob}{fp});
$r = $t->http(GET => '/', cert => 'bob', cookie => $bob_cookie);
is($r->{status}, 403, 'revoked: 403');
gate('revoked', 1);
cmd('session', 1);
cmd('gate', 1);
$r = $t->login('bob', 'bob', $u{bob}{password});
is($r->{status}, 403, 'revoked: no login');
form('login', 'refused', 1);
cmd('reserve', 1);
check('the revocation');

# --- Redis stopped and started: first each worker talks to Redis
my $carol = $u{carol}{cookie};
my ($ok) = until_both_workers($carol, 'carol', 'before the stop');
gate('ok', $ok);
cmd('session', $ok);
check('both workers connected');

$r = $t->http(GET => '/health');
is($r->{status}, 200, 'ecodoc_health: 200 with Redis up');

$t->redis_stop(save => 1);
my $failed = 0;
for (1 .. 4) {
    $r = $t->http(GET => '/', cert => 'carol', cookie => $carol);
    is($r->{status}, 503, "Redis down: 503 ($_)");
}
gate('error', 4);
$r = $t->login('carol', 'carol', $u{carol}{password});
is($r->{status}, 503, 'Redis down: login 503');
form('login', 'error', 1);
$r = $t->http(GET => '/health');
is($r->{status}, 503, 'ecodoc_health: 503 with Redis down');

# a worker sends a command on a connection still being made and loses it,
# or has no connection to send it on: which one is the kernel's timing
sub errors_since {
    my ($before, $m) = @_;
    my %d = map { $_ => v($m, qq(ecodoc_redis_errors_total{reason="$_"}))
        - v($before, qq(ecodoc_redis_errors_total{reason="$_"})) }
        qw(lost unavailable);
    cmd($_, v($m, qq(ecodoc_redis_commands_total{command="$_"}))
        - v($before, qq(ecodoc_redis_commands_total{command="$_"})))
        for qw(session reserve);
    return @d{qw(lost unavailable)};
}

my $before = $prev;
my ($lost, $unsent) = errors_since($before, scrape());
is($lost + $unsent, 6,
    'Redis down: each of the 6 requests that needed Redis one error');
my $m = check('Redis down');
is(non_setup_commands($m) - non_setup_commands($before), $lost,
    '... the commands sent then were all lost');

$t->redis_start();
my ($ok2, $unavailable) = until_both_workers($carol, 'carol',
    'after the start');
gate('ok', $ok2);
gate('error', $unavailable);
bump('ecodoc_redis_reconnects_total' => 2);
$before = $prev;
($lost, $unsent) = errors_since($before, scrape());
is($lost + $unsent, $unavailable,
    "Redis back: one error for each 503 ($unavailable)");
$m = check('Redis back');
is(v($m, 'ecodoc_redis_commands_total{command="session"}')
    - v($before, 'ecodoc_redis_commands_total{command="session"}'),
    $ok2 + $lost, '... a GETEX for each 200 and each lost one');
my $health_ok = 0;
for (1 .. 30) {
    $r = $t->http(GET => '/health');
    last if $health_ok = $r->{status} == 200;
    sleep 0.2;
}
ok($health_ok, 'ecodoc_health: 200 again');

# --- a reload keeps every count; the new workers go on from there
my @old = $t->nginx_workers;
$m = scrape();
my @new = $t->nginx_reload();
is(scalar(grep { my $o = $_; grep { $_ == $o } @new } @old), 0,
    'reload: two new workers');
my $after = scrape();
is_deeply($after, $m, 'reload: every series as before it');
$r = $t->http(GET => '/', cert => 'carol', cookie => $carol);
is($r->{status}, 200, 'after the reload: 200');
gate('ok', 1);
cmd('session', 1);
check('after the reload');

# --- $ecodoc_status in the JSON access log
my @log = log_entries(0);
my %verdicts;
$verdicts{ $_->{ecodoc_status} }++ for grep { $_->{uri} eq '/' } @log;
my %counted = map { /verdict="(\w+)"/ ? ($1 => $prev->{$_}) : () }
    grep { $prev->{$_} } grep { /^ecodoc_gate_requests_total/ } keys %$prev;
is_deeply(\%verdicts, \%counted,
    'the access log: a line per verdict, as the counters say');
is(scalar(grep { $_->{uri} =~ m{^/(?:ecodoc/|metrics|health)}
                 && $_->{ecodoc_status} ne '' } @log), 0,
    'the access log: no verdict for the pages, metrics and health');
my ($line) = grep { $_->{uri} eq '/' && $_->{ecodoc_status} eq 'ok' } @log;
is($line->{user}, 'alice', 'the access log: the user let through');
is($line->{cert}, $u{alice}{fp}, '... and the certificate');

# ---------------------------------------------------------------------------
# ecodoc-ca metrics: what Redis holds

# user add made a certificate password for each user; carol's is
# replaced by one that has expired
$t->ca('enroll-code', 'alice');
$t->ca('enroll-code', 'carol', '--days', 0);
my $dir = $t->dir;
$t->eca('issue', 'alice', '--p12', "$dir/a10.p12", '--days', 10,
    '--p12-password-file', $t->write_file('p12pw', "secret-p12\n"));
$t->eca('issue', 'carol', '--p12', "$dir/c100.p12", '--days', 100,
    '--p12-password-file', $t->path('p12pw'));
$t->eca('issue', 'carol', '--p12', "$dir/c20.p12", '--days', 20,
    '--p12-password-file', $t->path('p12pw'));
my $c20 = $t->eca('certs', 'carol');
my ($serial) = $c20 =~ /^(\S+)\s+carol\s+valid\s+\S+\s+\S+\s*$/m;
$t->add_user('dave', cost => 10);
$t->redis_cmd('HSET', $t->rkey('user:dave'), 'locked', '1');

my $sessions = scalar @{ $t->redis_cmd('KEYS', $t->rkey('sess:*')) };
my $text = $t->ca('metrics');
my ($cm, $ctype) = parse($text);
is_deeply($cm, {
    ecodoc_users => 4,
    ecodoc_users_locked => 1,
    ecodoc_certificates_bound => 2,
    ecodoc_sessions => $sessions,
    ecodoc_enroll_codes_outstanding => 3,
    'ecodoc_certificates_expiring{days="30"}' => 2,
}, 'ecodoc-ca metrics: users, locked, bound, sessions, codes, expiring');
is(scalar(grep { $_ ne 'gauge' } values %$ctype), 0, '... all gauges');
is($sessions, 1, "... carol's the one live session");
promtool_ok('ecodoc-ca metrics', $text);

$t->eca('revoke', '--serial', $serial) if defined $serial;
($cm) = parse($t->ca('metrics', '--days', 200));
is($cm->{'ecodoc_certificates_expiring{days="200"}'}, 2,
    'ecodoc-ca metrics --days 200: a revoked certificate is not counted');
my $bad = $t->ca({}, 'metrics', '--days', 0);
is($bad->{exit}, 2, 'ecodoc-ca metrics --days 0: a usage error');

# ---------------------------------------------------------------------------
# the alert rules, and the dashboard's queries (as recording rules)

my $dash = JSON::PP::decode_json($t->read_file(
    "$ROOT/conf/grafana-dashboard.json"));
my @exprs = map { $_->{expr} } map { @{ $_->{targets} || [] } }
    @{ $dash->{panels} };
my %names = map { /\b(ecodoc_[a-z_]+)/g } @exprs;
my %known = (%{ $prev }, %$cm);
s/\{.*// for my @series = keys %known;
my %have = map { my $n = $_; map { $_ => 1 } $n, "${n}_bucket", "${n}_sum",
    "${n}_count" } @series;
is(join(' ', grep { !$have{$_} } sort keys %names), '',
    'the dashboard asks for no metric that does not exist');

SKIP: {
    skip $NO_PROMTOOL, 2 unless $PROMTOOL;
    my $out = `$PROMTOOL check rules $ROOT/conf/alerts.yml 2>&1`;
    is($? >> 8, 0, 'promtool check rules accepts conf/alerts.yml')
        or diag($out);
    my $i = 0;
    my $rules = "groups:\n  - name: dashboard\n    rules:\n" . join('',
        map { (my $e = $_) =~ s/\$__rate_interval/5m/g;
              $e =~ s/\$instance/.*/g;
              $e =~ s/'/''/g;
              sprintf("      - record: ecodoc_dashboard_%d\n"
                  . "        expr: '%s'\n", ++$i, $e) } @exprs);
    my $f = $t->write_file('dashboard-rules.yml', $rules);
    $out = `$PROMTOOL check rules $f 2>&1`;
    is($? >> 8, 0, "the dashboard's $i queries are PromQL") or diag($out);
}

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
