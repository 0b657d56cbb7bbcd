#!/usr/bin/perl

# make bench: ngx_ecodoc_module against plain nginx and its peers, on
# loopback, in a temp dir that is always removed (BENCH_KEEP=1 keeps it).
#
#   ECODOC_MODULE=build/nginx/objs/ngx_http_ecodoc_module.so \
#   ECODOC_CA=build/ecodoc-ca perl bench/bench.pl
#
# Knobs (environment): BENCH_ROUNDS (5), BENCH_SECONDS (10), BENCH_REQUESTS
# (300000), BENCH_CONCURRENCY (32), BENCH_SESSIONS (10000),
# BENCH_PROFILE_REQUESTS (4000; 0 skips callgrind), BENCH_STORM_SECONDS
# (8), BENCH_STORM_ROUNDS (3), BENCH_USERS (1000000), BENCH_MILLION_AB (64),
# BENCH_MILLION_TIMEOUT (1s: both million gates' ecodoc_redis_timeout),
# BENCH_PARTS (rounds,storm,memory,million,profile), BENCH_OUT
# (bench/RESULTS.md).
#
# The parts: Redis, the CA, the user's sign-up, login and password change
# come from the test harness (t/lib/Ecodoc/Test.pm); the configurations are
# in bench/peers/.

use strict;
use warnings;
use utf8;

use Cwd qw(abs_path);
use Digest::SHA qw(sha1_hex sha256_hex);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use List::Util qw(sum max);
use POSIX qw(strftime floor);
use Time::HiRes qw(sleep time);

my $ROOT;
BEGIN { $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/..') }
use lib "$ROOT/t/lib";

BEGIN {
    for my $v (qw(ECODOC_MODULE ECODOC_CA)) {
        die "$v is not set (run it with make bench)\n" unless $ENV{$v};
    }
    $ENV{ECODOC_KEEP} = 1 if $ENV{BENCH_KEEP};
}

use Test::More ();
use Ecodoc::Test;

Test::More->builder->no_ending(1);
Test::More->builder->no_diag(0);
binmode STDOUT, ':encoding(UTF-8)';
$| = 1;

my %K = (
    rounds    => $ENV{BENCH_ROUNDS} // 5,
    seconds   => $ENV{BENCH_SECONDS} // 10,
    requests  => $ENV{BENCH_REQUESTS} // 300000,
    conc      => $ENV{BENCH_CONCURRENCY} // 32,
    sessions  => $ENV{BENCH_SESSIONS} // 10000,
    profile   => $ENV{BENCH_PROFILE_REQUESTS} // 4000,
    storm     => $ENV{BENCH_STORM_SECONDS} // 8,
    storm_rounds => $ENV{BENCH_STORM_ROUNDS} // 3,
    out       => $ENV{BENCH_OUT} // "$ROOT/bench/RESULTS.md",
    parts     => $ENV{BENCH_PARTS} // 'rounds,storm,memory,million,profile',
    million_timeout => $ENV{BENCH_MILLION_TIMEOUT} // '1s',
);
my %PART = map { $_ => 1 } split /[\s,]+/, $K{parts};

my $PEERS = "$ROOT/bench/peers";
my $PREFIX = 'ecodoc:';
my $NGINX = Ecodoc::Test::which('nginx') or die "no nginx\n";
my $AB = Ecodoc::Test::which('ab') or die "no ab (apache2-utils)\n";
my $T0 = time;

# the configurations, in the order of the table
my @CONFIGS = (
    { name => 'plain',        file => 'plain.conf',
      label => 'plain nginx mTLS proxy (ceiling)' },
    { name => 'gate',         file => 'gate.conf',
      label => 'ecodoc gate (1 Redis round trip)' },
    { name => 'gate_cache',   file => 'gate.conf',
      label => 'ecodoc gate + ecodoc_cache valid=2s',
      cache => 'ecodoc_cache zone=ecodoc:10m valid=2s;' },
    # the gate again, counting: a location with ecodoc_metrics turns the
    # counters on
    { name => 'gate_metrics', file => 'gate.conf',
      label => 'ecodoc gate + ecodoc_metrics',
      metrics => 'location = /metrics { ecodoc_metrics; allow 127.0.0.1; '
          . 'deny all; }' },
    { name => 'auth_request', file => 'auth_request.conf',
      label => 'auth_request + Lua auth location' },
    { name => 'lua',          file => 'lua.conf',
      label => 'access_by_lua + lua-resty-redis' },
);
my %CFG = map { $_->{name} => $_ } @CONFIGS;

my $t = Ecodoc::Test->new(prefix => $PREFIX);
my $D = $t->dir;
say_("bench dir: $D" . ($ENV{BENCH_KEEP} ? ' (kept)' : ''));

$t->make_ca();
$t->redis_start();
my $REDIS_SOCK = $t->{redis_sock};
my $REDIS_PID = $t->{procs}{redis};

my @ports = Ecodoc::Test::free_ports(1 + @CONFIGS + 1);
my $BACKEND_PORT = shift @ports;
$_->{port} = shift @ports for @CONFIGS;
my $PROFILE_PORT = shift @ports;

###############################################################################
# configurations

make_path("$D/conf", "$D/tmp", "$D/backend", map { "$D/$_->{name}" } @CONFIGS);

sub render {
    my ($src, $dst, %v) = @_;
    my $c = slurp("$PEERS/$src");
    my %all = (
        DIR => $D, BACKEND_PORT => $BACKEND_PORT, MODULE => $t->{module},
        REDIS_SOCK => $REDIS_SOCK, PREFIX => $PREFIX, PEERS => $PEERS,
        USER => $> == 0 ? 'user root root;' : '', ECODOC_CACHE => '',
        ECODOC_METRICS => '', REDIS_TIMEOUT => '1s', %v,
    );
    $c =~ s/%%([A-Z_]+)%%/exists $all{$1} ? $all{$1} : die "unknown %%$1%% in $src\n"/ge;
    spew($dst, $c);
}

render($_, "$D/conf/$_") for qw(common-main.conf common-http.conf
    common-tls.conf common-proxy.conf);
render('backend.conf', "$D/backend/nginx.conf");
for my $c (@CONFIGS) {
    render($c->{file}, "$D/$c->{name}/nginx.conf", NAME => $c->{name},
        PORT => $c->{port}, ECODOC_CACHE => $c->{cache} // '',
        ECODOC_METRICS => $c->{metrics} // '');
}

# the GATE script, as the module sends it, for the Lua peers
my $GATE = gate_script(dirname($ENV{ECODOC_MODULE}) . '/ngx_http_ecodoc_lua.c');
spew("$D/gate.lua", $GATE);
my $GATE_SHA = sha1_hex($GATE);

sub nginx_start {
    my ($name, $port) = @_;
    $t->spawn($name, "$D/$name/nginx.out", $NGINX, '-p', "$D/$name/",
        '-c', "$D/$name/nginx.conf", '-e', "$D/$name/error.log",
        '-g', "daemon off; pid $D/$name/nginx.pid;");
    $t->wait_port($name, $port, 15);
}

nginx_start('backend', $BACKEND_PORT);
nginx_start($_->{name}, $_->{port}) for @CONFIGS;

$_->{worker} = worker_pid($_->{name}) for @CONFIGS;
my $BACKEND_WORKER = worker_pid('backend');

###############################################################################
# the user: sign-up, login with the initial password, change it (the real
# pages of the gate's nginx); its session cookie is what ab presents

$t->{port} = $CFG{gate}{port};
my $alice = $t->ready_user('alice');
my $COOKIE = "$Ecodoc::Test::COOKIE=$alice->{cookie}";
spew("$D/alice.pem", slurp("$D/alice.crt") . slurp("$D/alice.key"));

my $exists = $t->redis_cmd('SCRIPT', 'EXISTS', $GATE_SHA);
die "the GATE script extracted from the sources is not the one the module " .
    "loaded (sha1 $GATE_SHA)\n" unless $exists->[0] == 1;

my $BODY = "ecodoc backend: ok\n";
for my $c (@CONFIGS) {
    my $res = get_with(port => $c->{port}, cert => 'alice',
        cookie => $alice->{cookie});
    die "$c->{name}: GET / answered $res->{status}, not the backend's 200:\n"
        . $res->{raw} . "\n" . (eval { slurp("$D/$c->{name}/error.log") } // '')
        unless $res->{status} == 200 && $res->{body} eq $BODY;
    # and without the session the gates refuse
    next if $c->{name} eq 'plain';
    my $no = get_with(port => $c->{port}, cert => 'alice');
    die "$c->{name}: GET / without a session answered $no->{status}\n"
        if $no->{status} == 200;
}
say_("every configuration answers the backend's 200 with the session " .
    "(and refuses without it, but plain)");

###############################################################################
# the interleaved rounds

my @MACHINE = machine();
my $LOAD0 = loadavg();
say_($_) for @MACHINE;
say_(sprintf "load: ab -k -c %d -t %d -n %d, %d rounds, interleaved",
    $K{conc}, $K{seconds}, $K{requests}, $K{rounds});

# warm-up: every configuration, every connection pool
for my $c (@CONFIGS) {
    my $w = ab($c, n => 200000, c => $K{conc}, t => 2);
    die "$c->{name}: warm-up failed: $w->{problem}\n" if $w->{problem};
    $c->{rate} = $w->{rps};
}

my (%runs, %med, $table);
for my $round (1 .. ($PART{rounds} ? $K{rounds} : 0)) {
    # rotate the order so no configuration always runs first or last
    my @order = map { $CONFIGS[($_ + $round - 1) % @CONFIGS] } 0 .. $#CONFIGS;
    for my $c (@order) {
        my $r = measured_run($c);
        die "$c->{name}: round $round: $r->{problem}\n" if $r->{problem};
        push @{ $runs{$c->{name}} }, $r;
        say_(sprintf "round %d %-13s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms"
            . "  cpu %5.2f s/10k  Redis commands/req %.4f (%s)", $round,
            $c->{name}, $r->{rps}, $r->{p50}, $r->{p99}, $r->{cpu10k},
            $r->{sent}, $r->{sent_what});
    }
}

for my $c ($PART{rounds} ? @CONFIGS : ()) {
    my $rs = $runs{$c->{name}};
    my %m;
    for my $k (qw(rps p50 p99 max cpu10k rss sent evalsha calls
        redis_cpu10k backend_cpu10k ab_cpu10k requests))
    {
        $m{$k} = median(map { $_->{$k} } @$rs);
    }
    $m{rps_all} = [map { $_->{rps} } @$rs];
    $m{sent_what} = $rs->[-1]{sent_what};
    $med{$c->{name}} = \%m;
}
if ($PART{rounds}) {
    # each ratio is taken within a round, between runs made minutes apart
    # at most, then the median of the rounds': the machine's drift over
    # the whole benchmark cancels out
    for my $name (keys %med) {
        my @rs = @{ $runs{$name} };
        my @pl = @{ $runs{plain} };
        $med{$name}{ratio} = median(map { $rs[$_]{rps} / $pl[$_]{rps} }
            0 .. $#rs);
        for my $peer (qw(lua auth_request gate)) {
            my @pr = @{ $runs{$peer} };
            $med{$name}{"x_$peer"} = median(map { $rs[$_]{rps} / $pr[$_]{rps} }
                0 .. $#rs);
        }
    }
    $table = results_table();
    print "\n$table\n";

    # what the counting configuration counted: every request of its runs
    my $m = get_with(port => $CFG{gate_metrics}{port}, path => '/metrics');
    my ($ok) = $m->{body} =~ /^ecodoc_gate_requests_total\{verdict="ok"\} (\d+)$/m;
    say_(sprintf "ecodoc_metrics of gate_metrics: %s requests let through "
        . "(its runs sent at least %d)", $ok // '?',
        sum(map { $_->{requests} } @{ $runs{gate_metrics} }));
}

###############################################################################
# login storm: logins at full speed next to gated GETs on the same nginx

my $storm = $PART{storm} ? login_storm() : undef;

###############################################################################
# memory: Redis bytes per user and per session, worker RSS at N sessions

my $memory = $PART{memory} ? memory() : undef;

###############################################################################
# a million users and sessions against one

my $million = $PART{million} ? million() : undef;

###############################################################################
# profile

my $profile = $K{profile} && $PART{profile} ? profile() : undef;

###############################################################################
# targets and the report

my $targets = targets();
print "\n$targets\n";
write_results();
say_(sprintf "written %s (%.0f s in all)", $K{out}, time - $T0);
exit 0;

###############################################################################
# helpers

sub say_ { print "@_\n" }

sub slurp {
    my ($f) = @_;
    open(my $fh, '<:raw', $f) or die "$f: $!\n";
    local $/;
    my $c = <$fh>;
    return $c;
}

sub spew {
    my ($f, $c) = @_;
    open(my $fh, '>:raw', $f) or die "$f: $!\n";
    print {$fh} $c;
    close $fh or die "$f: $!\n";
}

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# the GATE script as the module holds it: the C string that scripts/lua2c
# made of lua/lib.lua and lua/gate.lua for the module's build
sub gate_script {
    my ($file) = @_;
    my $src = slurp($file);
    my ($gate) = $src =~ /ecodoc_lua_gate\[\]\s*=(.*?"\s*);/s
        or die "no ecodoc_lua_gate in $file\n";
    my $s = '';
    while ($gate =~ /"((?:[^"\\]|\\.)*)"/g) {
        my $l = $1;
        $l =~ s/\\(n|t|"|\\)/{ n => "\n", t => "\t", '"' => '"', '\\' => '\\' }->{$1}/ge;
        $s .= $l;
    }
    return $s;
}

sub worker_pid {
    my ($name) = @_;
    my $master = $t->{procs}{$name} or die "$name is not running\n";
    my $deadline = time + 10;
    while (time < $deadline) {
        my $ch = eval { slurp("/proc/$master/task/$master/children") } // '';
        my ($pid) = split ' ', $ch;
        return $pid if $pid;
        sleep 0.05;
    }
    die "$name: no worker process\n";
}

# utime + stime in seconds: of a process, or of one of its threads
sub cpu_s {
    my ($pid, $tid) = @_;
    my $f = defined $tid ? "/proc/$pid/task/$tid/stat" : "/proc/$pid/stat";
    my $s = eval { slurp($f) } // return 0;
    $s =~ s/^.*\) //s;
    my @f = split ' ', $s;
    return ($f[11] + $f[12]) / 100;   # fields 14 and 15, USER_HZ = 100
}

sub rss_kb {
    my ($pid) = @_;
    my $s = eval { slurp("/proc/$pid/status") } // '';
    return $s =~ /^VmRSS:\s+(\d+)/m ? $1 : 0;
}

# the commands Redis counted since $a (INFO commandstats, through the
# harness), and their sum; INFO itself is the harness' own
sub stats_delta {
    my ($a, $b) = @_;
    my (%d, $all);
    for my $k (keys %$b) {
        next if $k eq 'info';
        my $n = $b->{$k} - ($a->{$k} // 0);
        $d{$k} = $n if $n;
        $all += $n;
    }
    return (\%d, $all // 0);
}

# ab against a configuration; returns what it measured, or {problem}
sub ab {
    my ($c, %o) = @_;
    my $csv = "$D/ab.csv";
    unlink $csv;
    my @cmd = ($AB, '-k', '-q', '-c', $o{c}, '-t', $o{t}, '-n', $o{n},
        '-E', "$D/alice.pem", '-e', $csv);
    push @cmd, '-C', $o{cookie} // $COOKIE unless $o{no_cookie};
    push @cmd, "https://127.0.0.1:$c->{port}/";
    my $r = ab_parse(run_capture(@cmd));
    return $r if $r->{problem};
    my %pct;
    for my $l (split /\n/, eval { slurp($csv) } // '') {
        $pct{$1} = $2 if $l =~ /^(\d+),([\d.]+)/;
    }
    @{$r}{qw(p50 p90 p99)} = @pct{qw(50 90 99)};
    return $r;
}

# what ab printed: the counts, and {problem} unless every request was
# answered with the backend's 200 and body
sub ab_parse {
    my ($out) = @_;
    my %r = (out => $out);
    ($r{complete}) = $out =~ /^Complete requests:\s+(\d+)/m;
    ($r{failed}) = $out =~ /^Failed requests:\s+(\d+)/m;
    ($r{non2xx}) = $out =~ /^Non-2xx responses:\s+(\d+)/m;
    ($r{rps}) = $out =~ /^Requests per second:\s+([\d.]+)/m;
    ($r{doclen}) = $out =~ /^Document Length:\s+(\d+)/m;
    ($r{keepalive}) = $out =~ /^Keep-Alive requests:\s+(\d+)/m;
    $r{non2xx} //= 0;
    if (!$r{complete} || !defined $r{rps}) {
        $r{problem} = "ab did not finish:\n$out";
        return \%r;
    }
    if ($r{failed} || $r{non2xx}
        || ($r{doclen} // -1) != length $BODY)
    {
        $r{problem} = "ab: $r{failed} failed, $r{non2xx} non-2xx, document "
            . "length " . ($r{doclen} // '?') . ":\n$out";
        return \%r;
    }
    ($r{max}) = $out =~ /^Total:\s+\d+\s+[\d.]+\s+[\d.]+\s+\d+\s+(\d+)/m;
    return \%r;
}

sub run_capture {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!\n";
    if ($pid == 0) {
        open(STDERR, '>&', \*STDOUT);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh>;
    close $fh;
    return $out // '';
}

# one run with the counters around it
sub measured_run {
    my ($c) = @_;
    my $w = $c->{worker};
    my $st0 = $t->redis_calls;
    my ($cpu0, $rcpu0, $bcpu0) = (cpu_s($w), cpu_s($REDIS_PID),
        cpu_s($BACKEND_WORKER));
    my ($ucpu0) = (times)[2] + (times)[3];
    # -n from this configuration's last rate, so that ab ends on a count
    # (every request answered and counted: exact Redis commands per
    # request); -t only as a bound
    my $want = int(($c->{rate} || 1000) * $K{seconds});
    $want = $K{requests} if $want > $K{requests};
    my $r = ab($c, n => $want, c => $K{conc}, t => 2 * $K{seconds});
    return $r if $r->{problem};
    $c->{rate} = $r->{rps};
    my ($ucpu1) = (times)[2] + (times)[3];
    my ($cpu1, $rcpu1, $bcpu1) = (cpu_s($w), cpu_s($REDIS_PID),
        cpu_s($BACKEND_WORKER));
    my $st1 = $t->redis_calls;
    my ($d, $all) = stats_delta($st0, $st1);
    my $n = $r->{complete};
    $r->{requests} = $n;
    $r->{cpu10k} = ($cpu1 - $cpu0) / $n * 10000;
    $r->{redis_cpu10k} = ($rcpu1 - $rcpu0) / $n * 10000;
    $r->{backend_cpu10k} = ($bcpu1 - $bcpu0) / $n * 10000;
    $r->{ab_cpu10k} = ($ucpu1 - $ucpu0) / $n * 10000;
    $r->{rss} = rss_kb($w);
    # the commands the nginx sent (the scripts use GET, never GETEX)
    my %sent = map { $_ => $d->{$_} // 0 } qw(getex evalsha eval);
    $r->{sent} = ($sent{getex} + $sent{evalsha} + $sent{eval}) / $n;
    $r->{evalsha} = ($sent{evalsha} + $sent{eval}) / $n;
    $r->{sent_what} = join(' + ', map { uc } grep { $sent{$_} }
        qw(getex evalsha eval)) || 'none';
    $r->{calls} = $all / $n;
    $r->{cmds} = $d;
    return $r;
}

# a GET on another port of the harness (its http() talks to $t->{port})
sub get_with {
    my (%o) = @_;
    local $t->{port} = $o{port};
    return $t->http(GET => $o{path} // '/', cert => $o{cert},
        cookie => $o{cookie}, timeout => 10);
}

sub machine {
    my $cpu = (slurp('/proc/cpuinfo') =~ /^model name\s*:\s*(.*)$/m)[0]
        // 'unknown';
    chomp(my $nproc = `nproc`);
    chomp(my $kernel = `uname -sr`);
    my ($mem) = slurp('/proc/meminfo') =~ /^MemTotal:\s+(\d+)/m;
    my $os = (slurp('/etc/os-release') =~ /^PRETTY_NAME="?([^"\n]*)/m)[0];
    my $ngx = (run_capture($NGINX, '-v') =~ m{nginx/(\S+)})[0];
    my $ssl = (run_capture($NGINX, '-V') =~ /built with (OpenSSL \S+)/)[0];
    my $redis = (run_capture('redis-server', '--version') =~ /v=(\S+)/)[0];
    my $abv = (run_capture($AB, '-V') =~ /Version (\S+)/)[0];
    my $lua = dpkg_version('libnginx-mod-http-lua');
    my $rr = dpkg_version('lua-nginx-redis');
    my $hiredis = dpkg_version('libhiredis0.14');
    return (
        "machine: $nproc CPUs ($cpu), " . sprintf('%.0f', $mem / 1048576)
            . " GiB, $kernel, $os",
        "versions: nginx $ngx ($ssl), Redis $redis, hiredis $hiredis, "
            . "ApacheBench $abv, libnginx-mod-http-lua $lua, "
            . "lua-nginx-redis $rr",
    );
}

sub loadavg {
    return join ' ', (split ' ', slurp('/proc/loadavg'))[0 .. 2];
}

sub dpkg_version {
    my ($p) = @_;
    my $v = run_capture('dpkg-query', '-W', '-f=${Version}', $p);
    return $v =~ /^\S+$/ ? $v : '?';
}

sub results_table {
    my @h = ('configuration', 'req/s', 'x plain', 'p50 ms', 'p99 ms',
        'worker CPU s/10k req', 'worker RSS MiB', 'Redis commands/req',
        'of which EVALSHA', 'Redis calls/req (incl. in scripts)',
        'Redis CPU s/10k req');
    my @rows;
    for my $c (@CONFIGS) {
        my $m = $med{$c->{name}};
        push @rows, [$c->{label}, sprintf('%.0f', $m->{rps}),
            sprintf('%.2f', $m->{ratio}), sprintf('%.2f', $m->{p50}),
            sprintf('%.2f', $m->{p99}), sprintf('%.3f', $m->{cpu10k}),
            sprintf('%.1f', $m->{rss} / 1024),
            sprintf('%.4f (%s)', $m->{sent}, $m->{sent_what}),
            sprintf('%.4f', $m->{evalsha}), sprintf('%.2f', $m->{calls}),
            sprintf('%.3f', $m->{redis_cpu10k})];
    }
    return md_table(\@h, \@rows);
}

sub md_table {
    my ($h, $rows) = @_;
    my $s = '| ' . join(' | ', @$h) . " |\n";
    $s .= '|' . join('|', map { ' --- ' } @$h) . "|\n";
    $s .= '| ' . join(' | ', @$_) . " |\n" for @$rows;
    return $s;
}

###############################################################################
# login storm

sub login_storm {
    my $c = $CFG{gate};
    my $w = $c->{worker};
    my ($pool) = slurp("$ROOT/bench/peers/gate.conf")
        =~ /^\s*(thread_pool ecodoc [^;]*);/m;
    say_("\nlogin storm on the gate's nginx ($K{storm_rounds} x ($K{storm} s "
        . "quiet, $K{storm} s during logins); scrypt 17 8 1 in $pool)");

    # a second user logs in again and again; alice's session stays valid
    my $bob = $t->ready_user('bob');

    my %o = (n => $K{requests}, c => $K{conc}, t => $K{storm});
    my (@quiet, @loud, @ratio);
    my %s = (logins => 0, refused => 0, seconds => 0, main_cpu => 0,
        pool_cpu => 0, quiet_main_cpu => 0, quiet_gets => 0, loud_gets => 0);
    for my $round (1 .. $K{storm_rounds}) {
        my $qcpu0 = cpu_s($w, $w);
        my $quiet = ab($c, %o);
        die "storm: quiet run: $quiet->{problem}\n" if $quiet->{problem};
        $s{quiet_main_cpu} += cpu_s($w, $w) - $qcpu0;
        $s{quiet_gets} += $quiet->{complete};

        my %tcpu0 = map { $_ => cpu_s($w, $_) } threads($w);
        my $t0 = time;
        my $end = $t0 + $K{storm} + 1;
        my @kids;
        my $nclients = 4;
        for my $i (1 .. $nclients) {
            my $pid = fork() // die "fork: $!\n";
            if ($pid == 0) {
                my ($ok, $bad) = (0, 0);
                while (time < $end) {
                    my $r = $t->login('bob', 'bob', $bob->{password});
                    ($r->{status} == 303 ? $ok : $bad)++;
                }
                spew("$D/storm.$i", "$ok $bad\n");
                POSIX::_exit(0);
            }
            push @kids, $pid;
        }
        sleep 1;    # the pool is busy hashing
        my $loud = ab($c, %o);
        waitpid($_, 0) for @kids;
        $s{seconds} += time - $t0;
        my %tcpu1 = map { $_ => cpu_s($w, $_) } threads($w);
        die "storm: run during the logins: $loud->{problem}\n"
            if $loud->{problem};

        for my $i (1 .. $nclients) {
            my ($o, $b) = split ' ', (eval { slurp("$D/storm.$i") } // '0 0');
            $s{logins} += $o;
            $s{refused} += $b;
        }
        for my $tid (keys %tcpu1) {
            my $d = $tcpu1{$tid} - ($tcpu0{$tid} // 0);
            $s{$tid == $w ? 'main_cpu' : 'pool_cpu'} += $d;
        }
        $s{threads} = scalar(keys %tcpu1) - 1;
        $s{loud_gets} += $loud->{complete};
        push @quiet, $quiet;
        push @loud, $loud;
        push @ratio, $loud->{p99} / $quiet->{p99};
        say_(sprintf "round %d quiet: %6.0f req/s  p50 %.2f ms  p99 %.2f ms"
            . "  max %.1f ms", $round, @{$quiet}{qw(rps p50 p99 max)});
        say_(sprintf "round %d storm: %6.0f req/s  p50 %.2f ms  p99 %.2f ms"
            . "  max %.1f ms  (p99 x%.2f)", $round,
            @{$loud}{qw(rps p50 p99 max)}, $ratio[-1]);
    }
    my $med = sub {
        my ($runs) = @_;
        my %m = map { my $k = $_; $k => median(map { $_->{$k} } @$runs) }
            qw(rps p50 p99);
        $m{max} = (sort { $b <=> $a } map { $_->{max} } @$runs)[0];
        return \%m;
    };
    $s{quiet} = $med->(\@quiet);
    $s{loud} = $med->(\@loud);
    $s{ratio} = median(@ratio);
    $s{ratios} = \@ratio;
    $s{pool} = $pool;
    $s{per_hash} = $s{logins} ? $s{pool_cpu} / $s{logins} : 0;
    # the event loop's CPU per gated GET, quiet and during the logins (when
    # it also serves the logins' pages): a hash in it would add ~0.8 s
    $s{quiet_per_get} = $s{quiet_main_cpu} / ($s{quiet_gets} || 1);
    $s{loud_per_get} = $s{main_cpu} / ($s{loud_gets} || 1);
    say_(sprintf "storm: p99 x%.2f (median of %s)", $s{ratio},
        join(' ', map { sprintf '%.2f', $_ } @ratio));
    say_(sprintf "logins: %d answered 303 (%.1f/s), %d otherwise; worker CPU:"
        . " main thread %.2f s, %d pool threads %.2f s", $s{logins},
        $s{logins} / $s{seconds}, $s{refused}, $s{main_cpu}, $s{threads},
        $s{pool_cpu});
    return \%s;
}

sub threads {
    my ($pid) = @_;
    opendir(my $dh, "/proc/$pid/task") or return ();
    return grep { /^\d+$/ } readdir $dh;
}

###############################################################################
# memory

sub memory {
    say_("\nmemory: $K{sessions} sessions");
    my %m;
    my $u = "${PREFIX}user:alice";
    my $usage = sub { $t->redis_cmd('MEMORY', 'USAGE', $_[0], 'SAMPLES', 0)
        // 0 };
    my $fp = $alice->{fp};
    $m{user_hash} = $usage->($u);
    $m{user_certs} = $usage->("$u:certs");
    $m{cert} = $usage->("${PREFIX}cert:$fp");
    $m{user_sessions_1} = $usage->("$u:sessions");
    my $sids = $t->redis_cmd('SMEMBERS', "$u:sessions");
    $m{sess} = $usage->("${PREFIX}sess:$sids->[0]");
    $m{per_user} = $m{user_hash} + $m{user_certs} + $m{cert};

    # N sessions of alice's, with the module's layout (docs/redis-schema.md)
    my $used0 = redis_used();
    my @tokens;
    my $now = time;
    my $proto = '';
    my $resp = sub {
        my $s = '*' . @_ . "\r\n";
        $s .= '$' . length($_) . "\r\n$_\r\n" for @_;
        return $s;
    };
    for my $i (1 .. $K{sessions}) {
        my $tok = token43($i);
        my $sid = sha256_hex($tok);
        push @tokens, $tok;
        $proto .= $resp->('SET', "${PREFIX}sess:$sid",
            "$fp " . int($now) . ' 0 alice', 'EX', 1800);
        $proto .= $resp->('SADD', "$u:sessions", $sid);
    }
    spew("$D/sessions.resp", $proto);
    my $out = run_capture('/bin/sh', '-c',
        "redis-cli -s '$REDIS_SOCK' --pipe < '$D/sessions.resp'");
    die "redis-cli --pipe: $out\n" unless $out =~ /errors: 0, replies: \d+/;
    my $used1 = redis_used();
    $m{per_session_used} = ($used1 - $used0) / $K{sessions};
    $m{user_sessions_n} = $usage->("$u:sessions");
    $m{per_session_keys} = $m{sess}
        + ($m{user_sessions_n} - $m{user_sessions_1}) / ($K{sessions} - 1);

    # touch each through the gate once, on each of the module's nginx
    for my $name (qw(gate gate_cache)) {
        my $c = $CFG{$name};
        my $rss0 = rss_kb($c->{worker});
        my $st0 = $t->redis_calls;
        my ($ok, $n) = touch_sessions($c->{port}, \@tokens);
        my $st1 = $t->redis_calls;
        my ($d) = stats_delta($st0, $st1);
        $m{$name} = { rss0 => $rss0, rss1 => rss_kb($c->{worker}),
            ok => $ok, n => $n, getex => $d->{getex} // 0,
            evalsha => $d->{evalsha} // 0 };
        die "$name: only $ok of $n session requests answered 200\n"
            unless $ok == $n;
        say_(sprintf "%-10s worker RSS %.1f MiB before, %.1f MiB after %d "
            . "sessions (%d answered 200; %d GETEX, %d EVALSHA)", $name,
            $rss0 / 1024, $m{$name}{rss1} / 1024, $n, $ok, $m{$name}{getex},
            $m{$name}{evalsha});
    }
    say_(sprintf "Redis: %d bytes per user (user hash %d + certs set %d + "
        . "cert hash %d); %.0f bytes per session (used_memory delta; sess record"
        . " %d + its sessions-set entry)", $m{per_user}, $m{user_hash},
        $m{user_certs}, $m{cert}, $m{per_session_used}, $m{sess});
    return \%m;
}

sub redis_used {
    my $i = $t->redis_cmd('INFO', 'memory');
    return ($i =~ /^used_memory:(\d+)/m)[0];
}

sub token43 {
    my ($i) = @_;
    my @c = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_');
    my $s = join '', map { $c[rand @c] } 1 .. 35;
    return $s . sprintf('%08d', $i);
}

# one keep-alive TLS connection, a GET per session token; returns
# (answers 200 from the backend, requests)
sub touch_sessions {
    my ($port, $tokens, $cert) = @_;
    $cert //= 'alice';
    my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        SSL_verify_mode => 0, SSL_cert_file => "$D/$cert.crt",
        SSL_key_file => "$D/$cert.key", Timeout => 10)
        or die "touch: connect: $IO::Socket::SSL::SSL_ERROR\n";
    my ($ok, $n, $buf) = (0, 0, '');
    for my $tok (@$tokens) {
        print {$s} "GET / HTTP/1.1\r\nHost: localhost\r\n"
            . "Cookie: $Ecodoc::Test::COOKIE=$tok\r\n\r\n";
        $n++;
        while (1) {
            if ($buf =~ /\A(HTTP\/1\.1 (\d+)[^\r]*\r\n(.*?)\r\n\r\n)/s) {
                my ($head, $st, $h) = ($1, $2, $3);
                my ($len) = $h =~ /^content-length:\s*(\d+)/mi;
                $len //= 0;
                if (length($buf) >= length($head) + $len) {
                    my $body = substr($buf, length $head, $len);
                    substr($buf, 0, length($head) + $len, '');
                    $ok++ if $st == 200 && $body eq $BODY;
                    last;
                }
            }
            my $k = sysread($s, my $chunk, 65536);
            die "touch: connection closed after $n requests\n" unless $k;
            $buf .= $chunk;
        }
    }
    close $s;
    return ($ok, $n);
}

###############################################################################
# a million users: the gate on a Redis holding BENCH_USERS users with bound
# certificates and as many live sessions, against one holding one user and
# one session; side by side, interleaved rounds

# the million's knobs
sub million_knobs {
    my %m = (
        users => $ENV{BENCH_USERS} // 1000000,
        real  => 8,                              # users with real certs
        ab    => $ENV{BENCH_MILLION_AB} // 64,  # ab processes, -c 1 each
        signups => 3,
    );
    die "BENCH_USERS must be at least 1000\n" if $m{users} < 1000;
    die "BENCH_MILLION_AB must be a multiple of $m{real}\n"
        if $m{ab} % $m{real};
    # each run gives every ab process a session none used before
    $m{per_real} = ($K{rounds} + 1) * $m{ab} / $m{real};
    return %m;
}

sub uid { sprintf 'u%07d', $_[0] }

# a Redis like the harness' (no persistence), a gate nginx on it
sub million_set {
    my ($name, $redis_port, $port) = @_;
    my $s = { name => $name, redis_port => $redis_port, port => $port,
        sock => "$D/redis_$name/redis.sock" };
    make_path("$D/redis_$name", "$D/m_$name");
    $t->spawn("redis_$name", "$D/redis_$name.log", 'redis-server',
        '--port', $redis_port, '--bind', '127.0.0.1',
        '--unixsocket', $s->{sock}, '--unixsocketperm', '777',
        '--save', '', '--appendonly', 'no', '--dir', "$D/redis_$name",
        '--daemonize', 'no', '--protected-mode', 'no');
    $s->{redis_pid} = $t->{procs}{"redis_$name"};
    with_set($s, sub {
        for (1 .. 200) {
            my $r = eval { $t->redis_cmd('PING') };
            return if defined $r && $r eq 'PONG';
            sleep 0.05;
        }
        die "redis_$name does not answer\n";
    });
    render('gate.conf', "$D/m_$name/nginx.conf", NAME => "m_$name",
        PORT => $port, REDIS_SOCK => $s->{sock},
        REDIS_TIMEOUT => $K{million_timeout});
    nginx_start("m_$name", $port);
    $s->{worker} = worker_pid("m_$name");
    return $s;
}

# the harness (redis_cmd, ca, signup, login) pointed at a set
sub with_set {
    my ($s, $code) = @_;
    local $t->{redis_port} = $s->{redis_port};
    local $t->{redis_sock} = $s->{sock};
    local $t->{port} = $s->{port};
    return $code->();
}

sub resp {
    my $s = '*' . @_ . "\r\n";
    $s .= '$' . length($_) . "\r\n$_\r\n" for @_;
    return $s;
}

# writes what $gen prints, in a child at nice 10, through redis-cli --pipe;
# returns the seconds it took
sub pipe_load {
    my ($s, $what, $gen) = @_;
    my $t0 = time;
    my $log = "$D/m_$s->{name}/load_$what.out";
    my $pid = fork() // die "fork: $!\n";
    if ($pid == 0) {
        POSIX::nice(10);
        open(STDOUT, '>', $log) or POSIX::_exit(1);
        open(STDERR, '>&', \*STDOUT);
        open(my $p, '|-', 'redis-cli', '-s', $s->{sock}, '--pipe')
            or POSIX::_exit(1);
        binmode $p;
        $gen->($p);
        close $p;
        POSIX::_exit($? ? 1 : 0);
    }
    waitpid($pid, 0);
    my $out = eval { slurp($log) } // '';
    die "loading $what: redis-cli --pipe: $out\n"
        if $? || $out !~ /errors: 0, replies: \d+/;
    return time - $t0;
}

# the last N lines of a file, for a message
sub tail_lines {
    my ($f, $n) = @_;
    my @l = split /\n/, eval { slurp($f) } // '';
    splice @l, 0, @l - $n if @l > $n;
    return join '', map { "$_\n" } @l;
}

sub used_memory {
    my ($s) = @_;
    return with_set($s, sub {
        $t->redis_cmd('MEMORY', 'PURGE');
        my $i = $t->redis_cmd('INFO', 'memory');
        return ($i =~ /^used_memory:(\d+)/m)[0];
    });
}

# ecodoc-ca against a set under /usr/bin/time: { exit, secs, rss_kb, out }
# (stdout in a file: the list of a million users is not read into memory)
sub ca_timed {
    my ($s, $tag, @args) = @_;
    my $base = "$D/m_$s->{name}/ca_$tag";
    my $pid = fork() // die "fork: $!\n";
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', "$base.out");
        open(STDERR, '>', "$base.err");
        exec('/usr/bin/time', '-f', '%e %M', '-o', "$base.time",
            $t->{ca_tool}, '--redis', "127.0.0.1:$s->{redis_port}",
            '--prefix', $PREFIX, @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my %r = (exit => $? >> 8, out => "$base.out",
        err => eval { slurp("$base.err") } // '');
    my $tm = eval { slurp("$base.time") } // '';
    @r{qw(secs rss_kb)} = $tm =~ /^([\d.]+) (\d+)$/m
        or die "ecodoc-ca @args: no /usr/bin/time line in $base.time:\n$tm\n";
    return \%r;
}

# P ab processes, -c 1 each, each with its own certificate and cookie, for
# BENCH_SECONDS; every answer must be the backend's 200
sub ab_fleet {
    my ($s, $pairs, $secs) = @_;
    my $w = $s->{worker};
    my $st0 = with_set($s, sub { $t->redis_calls });
    my ($cpu0, $rcpu0) = (cpu_s($w), cpu_s($s->{redis_pid}));
    my @kids;
    for my $j (0 .. $#$pairs) {
        my ($cert, $tok) = @{ $pairs->[$j] };
        my $pid = fork() // die "fork: $!\n";
        if ($pid == 0) {
            open(STDIN, '<', '/dev/null');
            open(STDOUT, '>', "$D/m_$s->{name}/ab.$j");
            open(STDERR, '>&', \*STDOUT);
            exec($AB, '-k', '-q', '-c', 1, '-t', $secs, '-n', 200000,
                '-E', "$D/$cert.pem", '-C', "$Ecodoc::Test::COOKIE=$tok",
                "https://127.0.0.1:$s->{port}/") or POSIX::_exit(127);
        }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;
    my ($cpu1, $rcpu1) = (cpu_s($w), cpu_s($s->{redis_pid}));
    my $st1 = with_set($s, sub { $t->redis_calls });
    my %r = (rps => 0, complete => 0);
    for my $j (0 .. $#$pairs) {
        my $a = ab_parse(eval { slurp("$D/m_$s->{name}/ab.$j") } // '');
        die "$s->{name}: ab $j: $a->{problem}\nthe gate's error log:\n"
            . tail_lines("$D/m_$s->{name}/error.log", 10) if $a->{problem};
        $r{rps} += $a->{rps};
        $r{complete} += $a->{complete};
    }
    my ($d) = stats_delta($st0, $st1);
    my $n = $r{complete};
    $r{cpu10k} = ($cpu1 - $cpu0) / $n * 10000;
    $r{redis_cpu10k} = ($rcpu1 - $rcpu0) / $n * 10000;
    $r{getex} = ($d->{getex} // 0) / $n;
    $r{scripts} = (($d->{evalsha} // 0) + ($d->{eval} // 0)) / $n;
    return \%r;
}

# a sign-up as the harness does it: ecodoc-ca user add, then the sign-up
# form over HTTPS with the new user's certificate; times of both
sub timed_signup {
    my ($s, $u) = @_;
    my $add = ca_timed($s, "add_$u", 'user', 'add', $u, '--cost', 12);
    die "ecodoc-ca user add $u: exit $add->{exit}: $add->{err}\n"
        if $add->{exit};
    my ($pw) = slurp($add->{out}) =~ /^initial password: (\S+)$/m
        or die "ecodoc-ca user add $u: no initial password\n";
    my $cert = $t->cert("c_$u", cn => $u);
    my $t0 = time;
    my $r = with_set($s, sub { $t->signup($cert, $u, $pw) });
    my $secs = time - $t0;
    die "$s->{name}: sign-up of $u answered $r->{status}:\n$r->{raw}\n"
        unless $r->{status} == 200;
    my $bound = with_set($s, sub {
        $t->redis_cmd('HGET', "${PREFIX}cert:" . $t->fingerprint($cert),
            'user') });
    die "$s->{name}: after the sign-up of $u the certificate is bound to "
        . ($bound // 'nobody') . "\n" unless ($bound // '') eq $u;
    return { add => $add->{secs}, add_rss => $add->{rss_kb},
        signup => $secs };
}

sub million {
    my %m = million_knobs();
    my $N = $m{users};
    say_("\na million: $N users with bound certificates and $N sessions "
        . "against 1 user and 1 session");
    my ($rp1, $rp2, $p1, $p2) = Ecodoc::Test::free_ports(4);
    my $small = million_set('small', $rp1, $p1);
    my $big = million_set('big', $rp2, $p2);
    my %r = (n => $N, knobs => \%m);

    # the real certificates, each bound to a user spread over the IDs
    my @real = map { 1 + $_ * int($N / $m{real}) } 0 .. $m{real} - 1;
    my (%real_cert, %real_fp);
    for my $i (@real) {
        my $c = $t->cert('m_' . uid($i), cn => uid($i));
        spew("$D/$c.pem", slurp("$D/$c.crt") . slurp("$D/$c.key"));
        $real_cert{$i} = $c;
        $real_fp{$i} = $t->fingerprint($c);
    }

    # the small set: user 1, through the real pages (sign-up, login,
    # password change); its one session
    my $one = with_set($small, sub {
        $t->ready_user(uid(1), cert => $real_cert{1}) });
    $r{small_keys} = with_set($small, sub { $t->redis_cmd('DBSIZE') });

    # the big set: user 1 by ecodoc-ca user add (its scrypt hash, at the
    # default cost, is the one every user gets), then the million piped
    my $add = with_set($big, sub { $t->ca('user', 'add', uid(1)) });
    my ($pw1) = $add =~ /^initial password: (\S+)$/m
        or die "ecodoc-ca user add: no initial password:\n$add\n";
    my $rec = with_set($big, sub {
        $t->redis_hash($t->rkey('user:' . uid(1))) });
    my $hash = $rec->{pw} // die "no pw in the record of " . uid(1) . "\n";
    my @fields = sort keys %$rec;
    die "user:U has fields @fields, the loader writes changed created "
        . "failures initial locked pw\n"
        unless "@fields" eq 'changed created failures initial locked pw';
    # and nothing else of it (its audit record, certificate password)
    with_set($big, sub { $t->redis_cmd('FLUSHDB') });
    my $now = int time;
    my $fp = sub { $real_fp{$_[0]} // sha256_hex("bench certificate $_[0]") };

    my $mem0 = used_memory($big);
    $r{load_users} = pipe_load($big, 'users', sub {
        my ($p) = @_;
        my $buf = '';
        for my $i (1 .. $N) {
            my $u = uid($i);
            my $f = $fp->($i);
            $buf .= resp('HSET', "${PREFIX}user:$u", 'pw', $hash,
                    'initial', '0', 'locked', '0', 'failures', '0',
                    'created', $now, 'changed', $now)
                . resp('SADD', "${PREFIX}user:$u:certs", $f)
                . resp('HSET', "${PREFIX}cert:$f", 'user', $u,
                    'bound', $now);
            if (length $buf > 1 << 20) { print {$p} $buf; $buf = '' }
        }
        print {$p} $buf;
    });
    my $mem1 = used_memory($big);

    # the sessions: per_real for each real user (their tokens kept for
    # ab), one for each other user while the N last, none for the rest;
    # the records as finish.lua writes them, an hour's TTL so that none
    # expires during the benchmark (the gate's GETEX sets the idle timeout
    # again on every one it serves)
    my %tokens;
    for my $i (@real) {
        $tokens{$i} = [map { token43($_) } 1 .. $m{per_real}];
    }
    my $budget = $N;
    my %is_real = map { $_ => 1 } @real;
    $r{load_sessions} = pipe_load($big, 'sessions', sub {
        my ($p) = @_;
        my $buf = '';
        my $left = $N - @real * $m{per_real};
        for my $i (1 .. $N) {
            my $u = uid($i);
            my $f = $fp->($i);
            my @sids;
            if ($is_real{$i}) {
                @sids = map { sha256_hex($_) } @{ $tokens{$i} };
            } elsif ($left > 0) {
                @sids = (sha256_hex("bench session $i $now"));
                $left--;
            }
            for my $sid (@sids) {
                $buf .= resp('SET', "${PREFIX}sess:$sid",
                        "$f $now 0 $u", 'EX', 3600)
                    . resp('SADD', "${PREFIX}user:$u:sessions", $sid);
            }
            if (length $buf > 1 << 20) { print {$p} $buf; $buf = '' }
        }
        print {$p} $buf;
    });
    my $mem2 = used_memory($big);
    $r{per_user} = ($mem1 - $mem0) / $N;
    $r{per_session} = ($mem2 - $mem1) / $N;
    $r{used} = $mem2;
    my $keys = with_set($big, sub { $t->redis_cmd('DBSIZE') });
    my $sessions = with_set($big, sub {
        $t->redis_cmd('INFO', 'keyspace') =~ /expires=(\d+)/ ? $1 : 0 });
    # users, their certs sets, bindings, sessions, and the sessions sets
    # of the users with sessions
    my $want = 4 * $N + $N - ($m{real} * $m{per_real} - $m{real});
    die "the big set has $keys keys, not the $want loaded\n"
        unless $keys == $want;
    die "the big set has $sessions sessions, not $N\n"
        unless $sessions == $N;
    $r{keys} = $keys;
    say_(sprintf "loaded %d users in %.0f s (%.0f bytes each), %d sessions "
        . "in %.0f s (%.0f bytes each); Redis used_memory %.0f MiB, %d keys",
        $N, $r{load_users}, $r{per_user}, $N, $r{load_sessions},
        $r{per_session}, $mem2 / 1048576, $keys);

    # what the code reads: user 1 logs in through the gate with the
    # password of the reused hash (finish.lua on the loaded user record and
    # binding), and every session of the real users passes the gate
    my $login = with_set($big, sub {
        $t->login($real_cert{1}, uid(1), $pw1) });
    my $c1 = Ecodoc::Test::cookie($login);
    die "big: the login of " . uid(1) . " answered $login->{status}:\n"
        . "$login->{raw}\n" unless $login->{status} == 303 && $c1;
    my $g = get_with(port => $big->{port}, cert => $real_cert{1},
        cookie => $c1);
    die "big: GET / with the login's session answered $g->{status}\n"
        unless $g->{status} == 200 && $g->{body} eq $BODY;
    my $passed = 0;
    for my $i (@real) {
        my ($ok, $n) = touch_sessions($big->{port}, $tokens{$i},
            $real_cert{$i});
        die "big: " . uid($i) . ": $ok of $n sessions passed the gate\n"
            unless $ok == $n;
        $passed += $ok;
    }
    $r{passed} = $passed;
    say_(sprintf "%s logged in with the reused hash's password; %d "
        . "sessions of %d users with real certificates passed the gate",
        uid(1), $passed, scalar @real);

    # the rounds: the same ab fleet on both, the order alternated; on the
    # big set each run takes sessions none used before
    my $next = 0;
    my $pairs = sub {
        my ($s) = @_;
        if ($s->{name} eq 'small') {
            return [map { [$real_cert{1}, $one->{cookie}] } 1 .. $m{ab}];
        }
        my $k = $next++;
        return [map {
            my $i = $real[$_ % $m{real}];
            [$real_cert{$i}, $tokens{$i}[$k * $m{ab} / $m{real}
                + int($_ / $m{real})]]
        } 0 .. $m{ab} - 1];
    };
    for my $s ($small, $big) {
        my $w = ab_fleet($s, $pairs->($s), 2);
        say_(sprintf "warm-up %-5s %8.0f req/s", $s->{name}, $w->{rps});
    }
    for my $round (1 .. $K{rounds}) {
        for my $s ($round % 2 ? ($small, $big) : ($big, $small)) {
            my $x = ab_fleet($s, $pairs->($s), $K{seconds});
            push @{ $r{runs}{$s->{name}} }, $x;
            say_(sprintf "round %d %-5s %8.0f req/s  worker %.3f s/10k  "
                . "Redis %.3f s/10k  GETEX/req %.4f  scripts/req %.4f",
                $round, $s->{name}, $x->{rps}, $x->{cpu10k},
                $x->{redis_cpu10k}, $x->{getex}, $x->{scripts});
        }
    }
    $r{sessions_used} = $next * $m{ab};
    my ($rs, $rb) = @{ $r{runs} }{qw(small big)};
    $r{ratios} = [map { $rb->[$_]{rps} / $rs->[$_]{rps} } 0 .. $#$rb];
    $r{ratio} = median(@{ $r{ratios} });
    for my $k (qw(rps cpu10k redis_cpu10k getex scripts)) {
        $r{small}{$k} = median(map { $_->{$k} } @$rs);
        $r{big}{$k} = median(map { $_->{$k} } @$rb);
    }
    say_(sprintf "big/small req/s: %.3f (median of %s)", $r{ratio},
        join(' ', map { sprintf '%.3f', $_ } @{ $r{ratios} }));

    # ecodoc-ca user list over both
    for my $s ($small, $big) {
        my $l = ca_timed($s, 'list', 'user', 'list');
        die "$s->{name}: ecodoc-ca user list: exit $l->{exit}: $l->{err}\n"
            if $l->{exit};
        open(my $fh, '<', $l->{out}) or die "$l->{out}: $!\n";
        my ($lines, $first, $last) = (0);
        while (my $line = <$fh>) {
            $lines++;
            $first //= $line if $lines == 2;
            $last = $line;
        }
        my $want = $s->{name} eq 'big' ? $N : 1;
        die "$s->{name}: user list printed $lines lines, not " . ($want + 1)
            . "\n" unless $lines == $want + 1;
        die "$s->{name}: user list begins with $first"
            unless $first =~ /^u0000001\s+active\s+0\s+no\s+1$/;
        die "$s->{name}: user list ends with $last"
            unless $last =~ /^\Q${\ uid($want)}\E\s+active\s+0\s+no\s+1$/;
        $r{list}{$s->{name}} = $l;
        say_(sprintf "%-5s ecodoc-ca user list: %d users in %.2f s, max RSS "
            . "%.1f MiB", $s->{name}, $want, $l->{secs}, $l->{rss_kb} / 1024);
    }
    # BENCH_LIST_BEFORE=path of another ecodoc-ca: its user list too (the
    # implementation before a change), the same output required
    if (my $before = $ENV{BENCH_LIST_BEFORE}) {
        local $t->{ca_tool} = $before;
        my $l = ca_timed($big, 'list_before', 'user', 'list');
        die "$before user list: exit $l->{exit}: $l->{err}\n" if $l->{exit};
        die "$before user list: another output\n"
            if run_capture('cmp', $l->{out}, $r{list}{big}{out}) ne '';
        $r{list}{before} = $l;
        say_(sprintf "big   %s user list: %.2f s, max RSS %.1f MiB", $before,
            $l->{secs}, $l->{rss_kb} / 1024);
    }

    # sign-ups: user N+1 on the big set, user 2 on the small one, and the
    # next ones, interleaved
    for my $k (1 .. $m{signups}) {
        for my $x ($k % 2 ? ([$big, $N + $k], [$small, 1 + $k])
            : ([$small, 1 + $k], [$big, $N + $k]))
        {
            my ($s, $i) = @$x;
            my $su = timed_signup($s, uid($i));
            $su->{user} = uid($i);
            push @{ $r{signups}{$s->{name}} }, $su;
            say_(sprintf "%-5s sign-up of %s: ecodoc-ca user add %.3f s "
                . "(max RSS %.1f MiB), the sign-up form %.3f s", $s->{name},
                uid($i), $su->{add}, $su->{add_rss} / 1024, $su->{signup});
        }
    }
    $r{mem_after} = used_memory($big);
    $r{keys_after} = with_set($big, sub { $t->redis_cmd('DBSIZE') });
    $r{hash_cost} = ($hash =~ /ln=(\d+)/)[0] // '?';
    for my $s ($small, $big) {
        $t->reap("m_$s->{name}", 'TERM', 10);
        $t->reap("redis_$s->{name}", 'TERM', 30);
    }
    return \%r;
}

###############################################################################
# profile: callgrind on a single-process nginx (master_process off), plain
# and gate, the same bounded number of requests

sub profile {
    my $vg = Ecodoc::Test::which('valgrind') or do {
        say_('no valgrind: profile skipped');
        return undef;
    };
    say_("\nprofile: callgrind, $K{profile} requests each (plain, gate, "
        . "gate_cache)");
    my %p;
    for my $name (qw(plain gate gate_cache)) {
        my $c = $CFG{$name};
        my $pn = "profile_$name";
        make_path("$D/$pn");
        (my $conf = slurp("$D/$name/nginx.conf"))
            =~ s/127\.0\.0\.1:$c->{port}/127.0.0.1:$PROFILE_PORT/;
        $conf =~ s{/$name/error\.log}{/$pn/error.log};
        # callgrind slows the worker down many times: no Redis timeouts
        $conf =~ s/ecodoc_redis_timeout\s+\S+;/ecodoc_redis_timeout 60s;/;
        spew("$D/$pn/nginx.conf", $conf);
        my $cg = "$D/$pn/callgrind.out";
        $t->spawn($pn, "$D/$pn/valgrind.out", $vg, '--tool=callgrind',
            '--instr-atstart=no', "--callgrind-out-file=$cg",
            $NGINX, '-p', "$D/$pn/", '-c', "$D/$pn/nginx.conf",
            '-e', "$D/$pn/error.log",
            '-g', "daemon off; master_process off; pid $D/$pn/nginx.pid;");
        $t->wait_port($pn, $PROFILE_PORT, 120);
        my $pc = { port => $PROFILE_PORT, name => $pn };
        my $w = ab($pc, n => 200, c => 4, t => 60);   # connections, Redis
        die "$pn: warm-up: $w->{problem}\n" if $w->{problem};
        run_capture('callgrind_control', '-i', 'on', $t->{procs}{$pn});
        my $r = ab($pc, n => $K{profile}, c => 4, t => 300);
        die "$pn: $r->{problem}\n" if $r->{problem};
        run_capture('callgrind_control', '-i', 'off', $t->{procs}{$pn});
        $t->reap($pn, 'TERM', 60);
        my $ann = run_capture('callgrind_annotate', '--inclusive=yes',
            '--threshold=100', $cg);
        my $exc = run_capture('callgrind_annotate', '--threshold=100', $cg);
        spew("$D/$pn/inclusive.txt", $ann);
        spew("$D/$pn/exclusive.txt", $exc);
        my ($total) = $ann =~ /^\s*([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS/m;
        ($total //= 0) =~ tr/,//d;
        $p{$name} = { total => $total, per_req => $total / $K{profile},
            inc => fn_costs($ann), exc => fn_costs($exc), n => $K{profile} };
        say_(sprintf "%-10s %.0f instructions per request", $name,
            $p{$name}{per_req});
    }
    return \%p;
}

# "function name" => instructions, from callgrind_annotate's output
sub fn_costs {
    my ($text) = @_;
    my %f;
    for my $l (split /\n/, $text) {
        next unless $l =~ /^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(?:\*\s+)?(\S+?):(\S+)/;
        my ($n, $file, $fn) = ($1, $2, $3);
        $n =~ tr/,//d;
        $fn =~ s/\s.*//;
        $fn =~ s/'\d+$//;
        # callgrind_annotate lists a function once with its file and once
        # as ???: the larger is the function's cost
        $f{$fn} = $n if !defined $f{$fn} || $n > $f{$fn};
    }
    return \%f;
}

###############################################################################

sub targets {
    my $g = $med{gate};
    my $gc = $med{gate_cache};
    # the cache's run with the most commands beyond one per second
    my ($worst) = sort {
        $b->{sent} * $b->{requests} - $b->{requests} / $b->{rps}
        <=> $a->{sent} * $a->{requests} - $a->{requests} / $a->{rps}
    } @{ $runs{gate_cache} || [] };
    my @t = !$g ? () : (
        ['gate >= 0.85 x plain req/s', sprintf('%.2f x', $g->{ratio}),
            $g->{ratio} >= 0.85],
        ['gate + cache >= 0.95 x plain req/s', sprintf('%.2f x', $gc->{ratio}),
            $gc->{ratio} >= 0.95],
        ['gate with ecodoc_metrics within 2% of the gate without (req/s)',
            sprintf('%.3f x', $med{gate_metrics}{x_gate}),
            $med{gate_metrics}{x_gate} >= 0.98],
        ['gate >= 1.5 x the access_by_lua peer',
            sprintf('%.2f x', $g->{x_lua}), $g->{x_lua} >= 1.5],
        ['gate >= 2 x the auth_request peer',
            sprintf('%.2f x', $g->{x_auth_request}),
            $g->{x_auth_request} >= 2],
        ['exactly 1 Redis command per gated request',
            sprintf('%.4f (%s)', $g->{sent}, $g->{sent_what}),
            abs($g->{sent} - 1) < 0.0005],
        # an entry is renewed by one request once half its valid (2 s) has
        # passed: one command per second of the run for the one session
        ['0 Redis commands per request with the cache (the renewals: one '
            . 'per valid/2 = 1 s)',
            sprintf('%.4f; the worst run: %.0f in %.1f s, %.0f allowed',
                $gc->{sent}, $worst->{sent} * $worst->{requests},
                $worst->{requests} / $worst->{rps},
                int($worst->{requests} / $worst->{rps}) + 1),
            $worst->{sent} * $worst->{requests}
                <= int($worst->{requests} / $worst->{rps}) + 1],
    );
    if ($storm) {
        push @t, ['login storm: p99 of gated GETs within 3 x quiet',
            sprintf('%.2f x (median of %s; %.2f -> %.2f ms)',
                $storm->{ratio},
                join(' ', map { sprintf '%.2f', $_ } @{ $storm->{ratios} }),
                $storm->{quiet}{p99}, $storm->{loud}{p99}),
            $storm->{ratio} <= 3];
        push @t, ['login storm: hashing off the event loop (no worker '
            . 'blocks)',
            sprintf('pool threads %.0f ms of CPU per login; event loop '
                . '%.1f us per GET quiet, %.1f us during the logins; longest '
                . 'GET %.0f ms', 1000 * $storm->{per_hash},
                1e6 * $storm->{quiet_per_get}, 1e6 * $storm->{loud_per_get},
                $storm->{loud}{max}),
            $storm->{per_hash} > 0.1
            && $storm->{loud_per_get} < 1.5 * $storm->{quiet_per_get}
            && $storm->{loud}{max} < 1000 * $storm->{per_hash} / 2];
    }
    if ($million) {
        my $m = $million;
        my ($lo, $hi) = (sort { $a <=> $b } @{ $m->{ratios} })[0, -1];
        push @t, [sprintf('%s users and sessions: gate req/s within 5%% of '
            . 'one user and one session', commify($m->{n})),
            sprintf('%.3f x (median of %d rounds, %.3f to %.3f)',
                $m->{ratio}, scalar @{ $m->{ratios} }, $lo, $hi),
            abs($m->{ratio} - 1) <= 0.05];
    }
    $_->[2] = $_->[2] ? 'met' : 'NOT met' for @t;
    return md_table(['target', 'measured', ''], \@t);
}

sub write_results {
    my @r;
    push @r, "# Benchmark results\n";
    push @r, "Written by `make bench` (bench/bench.pl) on "
        . strftime('%Y-%m-%d %H:%M UTC', gmtime) . ".\n";
    push @r, "## Machine\n";
    push @r, map { "- $_" } @MACHINE,
        "load average at the start: $LOAD0; at the end: " . loadavg()
        . " (the machine is shared: other work running beside the "
        . "benchmark lowers and scatters every number)";
    push @r, '';
    if ($table) {
        push @r, "## Requests: median of $K{rounds} interleaved rounds\n";
        push @r, "`ab -k -c $K{conc} -n N -t " . 2 * $K{seconds} . " -E "
            . "client.pem -C __Host-ecodoc=...` per configuration and round, "
            . "N = $K{seconds} s at the configuration's last rate (so that "
            . "ab ends on a count and every request is counted), every "
            . "request a gated GET / that passes (non-2xx = 0, the backend's "
            . "body checked).\n";
        push @r, $table;
        push @r, 'req/s of each round: ' . join('; ', map {
            "$_->{name} " . join(' ', map { sprintf '%.0f', $_ }
                @{ $med{$_->{name}}{rps_all} }) } @CONFIGS) . "\n";
        push @r, sprintf("Other CPU per 10k requests (median): backend "
            . "nginx %s; ab %s.\n", join(', ', map { sprintf '%s %.3f s',
                $_->{name}, $med{$_->{name}}{backend_cpu10k} } @CONFIGS),
            join(', ', map { sprintf '%s %.3f s', $_->{name},
                $med{$_->{name}}{ab_cpu10k} } @CONFIGS));
    }
    push @r, "## Targets\n";
    push @r, $targets;
    if ($storm) {
        my $s = $storm;
        push @r, "## Login storm\n";
        push @r, sprintf("Gated GETs (`ab -k -c %d -t %d`) on the gate's "
            . "nginx, quiet and while 4 clients log in (GET the form, POST "
            . "the right password; scrypt 17 8 1 in `%s`) as fast as they "
            . "can; %d rounds of the two, medians (the longest GET of all "
            . "rounds).\n", $K{conc}, $K{storm}, $s->{pool},
            $K{storm_rounds});
        push @r, md_table(['', 'req/s', 'p50 ms', 'p99 ms', 'max ms'], [
            map { [$_->[0], sprintf('%.0f', $_->[1]{rps}),
                sprintf('%.2f', $_->[1]{p50}), sprintf('%.2f', $_->[1]{p99}),
                sprintf('%.1f', $_->[1]{max})] }
            ['quiet', $s->{quiet}], ['during the logins', $s->{loud}]]);
        push @r, sprintf("%d logins answered 303 in %d s (%.1f/s), %d did "
            . "not. CPU of the nginx worker during the logins: main thread "
            . "(the event loop) %.2f s, the %d thread-pool thread(s) %.2f s: "
            . "the hashing is in the pool (%.0f ms of CPU per login); the "
            . "event loop spent %.1f us per gated GET, against %.1f us "
            . "quiet, and the longest gated GET took %.0f ms, less than half "
            . "a hash: the event loop never waited for one.\n",
            $s->{logins}, $s->{seconds}, $s->{logins} / $s->{seconds},
            $s->{refused}, $s->{main_cpu}, $s->{threads}, $s->{pool_cpu},
            1000 * $s->{per_hash}, 1e6 * $s->{loud_per_get},
            1e6 * $s->{quiet_per_get}, $s->{loud}{max});
    }
    if ($memory) {
        my $m = $memory;
        push @r, "## Memory\n";
        push @r, md_table(['what', 'bytes'], [
            ['Redis, per user: `user:U` hash', $m->{user_hash}],
            ['Redis, per user: `user:U:certs` set (one fingerprint)',
                $m->{user_certs}],
            ['Redis, per user: `cert:FP` hash', $m->{cert}],
            ['Redis, per user (sum)', $m->{per_user}],
            ['Redis, per session: `sess:SID` record (MEMORY USAGE)',
                $m->{sess}],
            ["Redis, per session incl. its `user:U:sessions` entry "
                . "(MEMORY USAGE, $K{sessions} sessions)",
                sprintf('%.0f', $m->{per_session_keys})],
            ["Redis, per session (used_memory delta / $K{sessions})",
                sprintf('%.0f', $m->{per_session_used})],
        ]);
        push @r, md_table(['nginx worker RSS', 'before', "after "
            . "$K{sessions} sessions touched once", 'GETEX', 'EVALSHA'], [
            map { [$_, sprintf('%.1f MiB', $m->{$_}{rss0} / 1024),
                sprintf('%.1f MiB', $m->{$_}{rss1} / 1024),
                $m->{$_}{getex}, $m->{$_}{evalsha}] } qw(gate gate_cache)]);
        push @r, "The sessions were written straight into Redis with the "
            . "module's layout (docs/redis-schema.md), all for the "
            . "benchmark's user and certificate, and each was then "
            . "presented once through the gate over one kept-alive "
            . "connection (every answer a 200 from the backend).\n";
    }
    push @r, million_text() if $million;
    if ($profile) {
        push @r, "## Profile (callgrind)\n";
        push @r, profile_text();
    }
    push @r, "## How to reproduce\n";
    push @r, "```sh\nmake bench        # installs what is missing with "
        . "apt-get, builds (make all), runs bench/bench.pl\n```\n";
    push @r, "Knobs: BENCH_ROUNDS, BENCH_SECONDS, BENCH_CONCURRENCY, "
        . "BENCH_SESSIONS, BENCH_PROFILE_REQUESTS (0 skips callgrind), "
        . "BENCH_STORM_SECONDS, BENCH_STORM_ROUNDS, BENCH_PARTS (any of "
        . "rounds,storm,memory,million,profile), BENCH_USERS (the "
        . "million), BENCH_MILLION_AB, BENCH_MILLION_TIMEOUT, "
        . "BENCH_KEEP=1 (keep the temp dir with every config, log and "
        . "callgrind file). The configurations are in bench/peers/.\n";
    for my $f ("$ROOT/bench/METHOD.md", "$ROOT/bench/FINDINGS.md") {
        push @r, slurp($f) if -f $f;
    }
    spew($K{out}, join("\n", @r));
}

sub commify {
    my ($n) = @_;
    1 while $n =~ s/^(\d+)(\d{3})/$1,$2/;
    return $n;
}

sub million_text {
    my $m = $million;
    my $k = $m->{knobs};
    my $N = commify($m->{n});
    my @r;
    push @r, "## A million users\n";
    push @r, sprintf("Two more Redis servers (the harness' settings) and a "
        . "gate nginx on each (`gate.conf`, one worker): **small** holds one "
        . "user, signed up, logged in and with its password changed through "
        . "the real pages, and its one session; **big** holds %s users with "
        . "a bound certificate each and %s live sessions, loaded through "
        . "`redis-cli --pipe` at nice 10 with the keys the scripts write "
        . "(docs/redis-schema.md): `user:U` (the fields `ecodoc-ca user "
        . "add` writes; every user has the one scrypt hash, 2^%s, that "
        . "`ecodoc-ca user add` made for the first user: the hash's cost is "
        . "irrelevant to what is measured here), `user:U:certs`, `cert:FP`, "
        . "`sess:SID` (`FP CREATED 0 U`, TTL 1 h) and `user:U:sessions`; "
        . "%d of the users have a real certificate of the test CA (the "
        . "others a made-up fingerprint) and %d sessions each, the other "
        . "sessions one per user (the last %s users have none). Not loaded: "
        . "the CA's records of issued certificates (`certs:U`, "
        . "`certinfo:FP`) and the audit stream, which the gate never reads. "
        . "Loading took **%.0f s** for the users and **%.0f s** for the "
        . "sessions; the big Redis then held %s keys in %.0f MiB "
        . "(`used_memory`).\n", $N, $N, $m->{hash_cost}, $k->{real},
        $k->{per_real}, commify($k->{real} * $k->{per_real} - $k->{real}),
        $m->{load_users}, $m->{load_sessions}, commify($m->{keys}),
        $m->{used} / 1048576);
    push @r, sprintf("Checked before measuring: the first user logs in "
        . "through the big gate with the password of the reused hash "
        . "(`finish.lua` on the loaded record and binding) and its session "
        . "passes; each of the %d loaded sessions of the users with real "
        . "certificates passes the gate (the backend's 200).\n",
        $m->{passed});
    push @r, md_table(['Redis memory (used_memory growth / count)', 'bytes'],
        [['per user (`user:U`, `user:U:certs`, `cert:FP`)',
            sprintf('%.0f', $m->{per_user})],
         ['per session (`sess:SID` with its TTL, its `user:U:sessions` '
            . 'entry)', sprintf('%.0f', $m->{per_session})]]);
    push @r, sprintf("**Gated requests.** %d ab processes (`ab -k -c 1 -t "
        . "%d`), each presenting one certificate and one cookie: on small "
        . "all the one user's; on big the %d real users' certificates, each "
        . "process with another session in every run (%d distinct sessions "
        . "in all, warm-up included). %d rounds, small and big one after the "
        . "other, the order alternated; the ratio is taken within each "
        . "round. Every answer was the backend's 200.\n", $k->{ab},
        $K{seconds}, $k->{real}, $m->{sessions_used}, $K{rounds});
    my @rows;
    for my $i (0 .. $#{ $m->{ratios} }) {
        my ($s, $b) = ($m->{runs}{small}[$i], $m->{runs}{big}[$i]);
        push @rows, [$i + 1, sprintf('%.0f', $s->{rps}),
            sprintf('%.0f', $b->{rps}), sprintf('%.3f', $m->{ratios}[$i]),
            sprintf('%.3f / %.3f', $s->{cpu10k}, $b->{cpu10k}),
            sprintf('%.3f / %.3f', $s->{redis_cpu10k}, $b->{redis_cpu10k})];
    }
    push @rows, ['median', sprintf('%.0f', $m->{small}{rps}),
        sprintf('%.0f', $m->{big}{rps}), sprintf('%.3f', $m->{ratio}),
        sprintf('%.3f / %.3f', $m->{small}{cpu10k}, $m->{big}{cpu10k}),
        sprintf('%.3f / %.3f', $m->{small}{redis_cpu10k},
            $m->{big}{redis_cpu10k})];
    push @r, md_table(['round', 'small req/s', 'big req/s', 'big / small',
        'worker CPU s/10k (small / big)', 'Redis CPU s/10k (small / big)'],
        \@rows);
    push @r, sprintf("Redis commands per request (median): GETEX %.4f "
        . "small, %.4f big; scripts %.4f small, %.4f big.\n",
        $m->{small}{getex}, $m->{big}{getex}, $m->{small}{scripts},
        $m->{big}{scripts});
    my ($ls, $lb) = @{ $m->{list} }{qw(small big)};
    push @r, "**`ecodoc-ca user list`** (stdout to a file; `/usr/bin/time`: "
        . "elapsed and peak RSS):\n";
    push @r, md_table(['', 'users', 'seconds', 'peak RSS MiB'], [
        ['small', 1, sprintf('%.2f', $ls->{secs}),
            sprintf('%.1f', $ls->{rss_kb} / 1024)],
        ['big', $N, sprintf('%.2f', $lb->{secs}),
            sprintf('%.1f', $lb->{rss_kb} / 1024)],
        $m->{list}{before} ? (['big, the implementation before '
            . '(`BENCH_LIST_BEFORE`)', $N,
            sprintf('%.2f', $m->{list}{before}{secs}),
            sprintf('%.1f', $m->{list}{before}{rss_kb} / 1024)]) : ()]);
    push @r, "**Sign-up** as the tests do it: `ecodoc-ca user add U --cost "
        . "12`, then the sign-up form over HTTPS with U's new certificate "
        . "(GET the form, POST user and initial password: a reservation, an "
        . "scrypt check at 2^12 in the thread pool, `finish.lua`); the "
        . "binding checked in Redis after. User " . commify($m->{n} + 1)
        . " and the next on big, user 2 and the next on small, "
        . "interleaved:\n";
    my @su;
    my ($ss, $sb) = @{ $m->{signups} }{qw(small big)};
    for my $i (0 .. $#$sb) {
        push @su, ["$sb->[$i]{user} (big)", sprintf('%.3f', $sb->[$i]{add}),
            sprintf('%.1f', $sb->[$i]{add_rss} / 1024),
            sprintf('%.3f', $sb->[$i]{signup})];
        push @su, ["$ss->[$i]{user} (small)", sprintf('%.3f', $ss->[$i]{add}),
            sprintf('%.1f', $ss->[$i]{add_rss} / 1024),
            sprintf('%.3f', $ss->[$i]{signup})];
    }
    push @r, md_table(['user', 'user add s', 'user add peak RSS MiB',
        'sign-up form s'], \@su);
    push @r, sprintf("Sign-up form, big / small: %.2f (first pair), %.2f "
        . "(median of the pairs); user add: %.2f, %.2f.\n",
        $sb->[0]{signup} / $ss->[0]{signup},
        median(map { $sb->[$_]{signup} / $ss->[$_]{signup} } 0 .. $#$sb),
        $sb->[0]{add} / $ss->[0]{add},
        median(map { $sb->[$_]{add} / $ss->[$_]{add} } 0 .. $#$sb));
    return @r;
}

sub profile_text {
    my $p = $profile;
    my $s = sprintf("Single-process nginx (`master_process off`) under "
        . "`valgrind --tool=callgrind`, instrumentation on only for %d "
        . "kept-alive requests (`ab -k -c 4`), after a warm-up.\n\n"
        . "Instructions per request: plain %.0f, gate %.0f: the gate adds "
        . "%.0f (%.0f%%), which includes the Redis round trip's client side "
        . "(the syscalls' kernel time is not counted by callgrind); gate + "
        . "cache %.0f: a hit in the shared memory adds %.0f (%.0f%%).\n\n",
        $p->{gate}{n}, $p->{plain}{per_req}, $p->{gate}{per_req},
        $p->{gate}{per_req} - $p->{plain}{per_req},
        100 * ($p->{gate}{per_req} / $p->{plain}{per_req} - 1),
        $p->{gate_cache}{per_req},
        $p->{gate_cache}{per_req} - $p->{plain}{per_req},
        100 * ($p->{gate_cache}{per_req} / $p->{plain}{per_req} - 1));
    my $inc = $p->{gate}{inc};
    my $exc = $p->{gate}{exc};
    my $n = $p->{gate}{n};
    my @fn = grep { /ecodoc|^redis|^sds|^createString|^createArray|^freeReplyObject|^EVP_Digest$|^EVP_DigestInit_ex$|^EVP_DigestFinal_ex$|^EVP_MD_CTX_new$|^EVP_MD_CTX_free$|^X509_digest$/ } keys %$inc;
    my @rows = map { [ "`$_`", sprintf('%.0f', $inc->{$_} / $n),
        sprintf('%.0f', ($exc->{$_} // 0) / $n) ] }
        sort { $inc->{$b} <=> $inc->{$a} } @fn;
    splice @rows, 25 if @rows > 25;
    $s .= md_table(['function (module, hiredis, crypto)',
        'inclusive instr/request', 'exclusive instr/request'], \@rows);
    my @top = sort { $exc->{$b} <=> $exc->{$a} } keys %$exc;
    splice @top, 15 if @top > 15;
    $s .= "\nTop exclusive costs of the gate's nginx (all code):\n\n";
    $s .= md_table(['function', 'exclusive instr/request'], [ map {
        [ "`$_`", sprintf('%.0f', $exc->{$_} / $n) ] } @top ]);
    return $s;
}
