package Ecodoc::Race;

# The race tester (`make race`, t/race.t): many short random schedules in
# which several clients sign up, log in, change passwords, log out and
# send gated requests while the administrator revokes, resets, unlocks,
# deletes and re-adds users with ecodoc-ca, bursts of wrong passwords
# arrive and Redis is paused or restarted; after each schedule the
# guarantees of DESIGN.md are checked against what the backend received,
# what Redis holds and what the audit stream says.
#
#   my $race = Ecodoc::Race->new();          # an Ecodoc::Test: skip_all
#   my $sum = $race->run(schedules => 10,    # if no module/CA
#       seconds => 60, seed => undef, first_seed => undef,
#       stop => 0, say => sub { print @_ });
#   # $sum = { schedules, violations => [...], first => {...}, ... }
#
# One environment serves every schedule: nginx with 2 workers and the
# module, Redis, a backend that records every request (Ecodoc::Race's
# own, below), the CA of `ecodoc-ca init`. Between schedules Redis is
# emptied (FLUSHDB) and nginx reloaded when the scrypt cost changes.
#
# A schedule is made from its seed alone (a PRNG of our own, the same on
# every machine): the users, the clients, every action and the time it
# starts at, the administrator's commands, the bursts of wrong passwords
# and what happens to Redis. RACE_SEED=N runs that same schedule again;
# the interleaving, and so the answers, may differ from run to run.
#
# Core Perl + IO::Socket::SSL only.

use strict;
use warnings;
use utf8;

use Cwd qw(abs_path);
use Digest::SHA ();
use Carp qw(croak);
use Fcntl qw(:flock O_WRONLY O_APPEND O_CREAT);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use IO::Socket::SSL;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use Ecodoc::Test qw(form_token cookies cookie hdr);
our @ISA = ('Ecodoc::Test');

my $LIB = abs_path(dirname(dirname(abs_path(__FILE__))));

our $MAX_FAILURES = 6;        # ecodoc_max_failures of the harness
our $CLIENT_TIMEOUT = 25;     # seconds a client waits for an answer
my $JSON = JSON::PP->new->canonical->utf8;

###############################################################################
# construction: an Ecodoc::Test whose nginx has two workers and whose
# backend records every request

sub new {
    my ($class, %o) = @_;
    my $self = Ecodoc::Test::new($class, prefix => 'race:');
    $self->{cost} = 12;
    $self->{fps} = {};
    return $self;
}

sub write_nginx_conf {
    my ($self, %o) = @_;
    my $conf = $self->SUPER::write_nginx_conf(%o);
    $conf =~ s/^worker_processes 1;$/worker_processes 2;/m
        or croak 'no worker_processes line in the harness config';
    $self->write_file('nginx.conf', $conf);
    return $conf;
}

sub backend_start {
    my ($self) = @_;
    $self->{backend_log} = $self->path('backend.jsonl');
    $self->write_file('backend.jsonl', '');
    $self->spawn('backend', $self->path('backend.log'), $^X, "-I$LIB",
        '-MEcodoc::Race', '-e', 'Ecodoc::Race::backend_main(@ARGV)',
        $self->{backend_port}, $self->{backend_log});
    $self->wait_port('backend', $self->{backend_port}, 10);
    return $self;
}

# the actors of a schedule cut short go first; a stopped Redis must be
# continued before it can be stopped
sub stop {
    my ($self) = @_;
    if (my @live = keys %{ $self->{live} || {} }) {
        kill 'TERM', @live;
        waitpid($_, 0) for @live;
        $self->{live} = {};
    }
    kill 'CONT', $self->{procs}{redis} if $self->{procs}{redis};
    return $self->SUPER::stop();
}

sub setup {
    my ($self) = @_;
    return $self if $self->{set_up}++;
    $self->eca_init();
    $self->start(directives => { ecodoc_scrypt => "$self->{cost} 8 1" });
    return $self;
}

###############################################################################
# the recording backend: one JSON line per request, appended by each of
# its preforked workers with a single write (O_APPEND)

sub backend_main {
    my ($port, $log) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $port, Proto => 'tcp', Listen => 128, ReuseAddr => 1)
        or die "race backend: cannot listen on $port: $@\n";
    $SIG{PIPE} = 'IGNORE';
    my (%kids, $stopping);
    my $parent = $$;
    $SIG{TERM} = $SIG{INT} = $SIG{HUP} = sub {
        $stopping = 1;
        if ($$ == $parent) { kill 'TERM', keys %kids } else { POSIX::_exit(0) }
    };
    my $spawn = sub {
        my $pid = fork();
        die "race backend: fork: $!\n" unless defined $pid;
        if ($pid) {
            $kids{$pid} = 1;
            return;
        }
        sysopen(my $out, $log, O_WRONLY | O_APPEND | O_CREAT)
            or die "race backend: $log: $!\n";
        while (!$stopping) {
            my $c = $listen->accept() or next;
            eval { backend_handle($c, $out); 1 };
            close $c;
        }
        POSIX::_exit(0);
    };
    $spawn->() for 1 .. 4;
    while (!$stopping) {
        my $pid = waitpid(-1, 0);
        last if $pid < 0;
        $spawn->() if delete $kids{$pid} and !$stopping;
    }
    kill 'TERM', keys %kids;
    1 while waitpid(-1, 0) > 0;
    exit 0;
}

sub backend_handle {
    my ($c, $out) = @_;
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    my $line = <$c>;
    my %h;
    my @identity;
    while (defined(my $l = <$c>)) {
        $l =~ s/\r?\n\z//;
        last if $l eq '';
        my ($n, $v) = $l =~ /^([^:]*):[ \t]*(.*?)[ \t]*\z/ or next;
        (my $k = lc $n) =~ tr/_/-/;
        $h{$k} = $v;
        push @identity, "$n: $v" if $k =~ /^x-ecodoc-/;
    }
    alarm 0;
    return unless defined $line;
    my $t = time;
    $line =~ s/\r?\n\z//;
    my ($method, $target) = split / /, $line;
    my $rec = {
        t        => $t,
        method   => $method,
        target   => $target,
        user     => $h{'x-ecodoc-user'},
        fp       => $h{'x-ecodoc-cert-fingerprint'},
        identity => \@identity,
    };
    syswrite($out, $JSON->encode($rec) . "\n");
    my $body = "ok\n";
    print {$c} "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n"
        . $body;
}

###############################################################################
# a PRNG of our own (xorshift32), so that a seed means the same schedule
# with any perl

package Ecodoc::Race::Rng {
    sub new {
        my ($class, $seed) = @_;
        # near seeds, unrelated states
        my $x = unpack('N', Digest::SHA::sha256("ecodoc race $seed"));
        $x = 0x1234567 unless $x;
        my $self = bless { x => $x }, $class;
        $self->step for 1 .. 8;
        return $self;
    }
    sub step {
        my ($self) = @_;
        my $x = $self->{x};
        $x ^= ($x << 13) & 0xFFFFFFFF;
        $x ^= $x >> 17;
        $x ^= ($x << 5) & 0xFFFFFFFF;
        return $self->{x} = $x;
    }
    sub float { my ($s, $n) = @_; return $s->step / 4294967296 * ($n // 1) }
    sub below { my ($s, $n) = @_; return CORE::int($s->float($n)) }
    sub chance { my ($s, $p) = @_; return $s->float < $p }
    # pick([value, weight], ...)
    sub pick {
        my ($s, @w) = @_;
        my $sum = 0;
        $sum += $_->[1] for @w;
        my $r = $s->float($sum);
        for (@w) {
            return $_->[0] if ($r -= $_->[1]) < 0;
        }
        return $w[-1][0];
    }
}

###############################################################################
# schedules

# plan($seed) -> the whole schedule, made from the seed alone
sub plan {
    my ($seed) = @_;
    my $rng = Ecodoc::Race::Rng->new($seed);
    my %p = (seed => $seed);
    my $nu = 2 + $rng->below(2);
    $p{users} = [map { "ru$_" } 0 .. $nu - 1];
    # the scrypt cost (log2 N) of every password of the schedule: the
    # initial ones (ecodoc-ca --cost) and the changed ones (ecodoc_scrypt)
    # (the harness' 12, or raised: the hashing threads run at idle
    # priority, so on a busy machine a check takes seconds even so)
    $p{cost} = $rng->pick([12, 5], [13, 3], [14, 2]);
    my $d = $p{duration} = 3 + $rng->float(2);

    # Redis: paused (SIGSTOP, CLIENT PAUSE) or restarted, in some schedules
    my $chaos = $rng->pick(['none', 10], ['stop', 3], ['pause', 2],
        ['restart', 2]);
    if ($chaos ne 'none') {
        $p{chaos} = [$chaos, 0.3 + $rng->float($d - 0.5),
            0.2 + $rng->float(0.8)];
    }

    # the clients: one or two per user (the second shares the certificate)
    my @kinds = (['session', 25], ['gated', 38], ['login', 12],
        ['change', 6], ['logout', 7], ['wrong', 5], ['signup', 5],
        ['pause', 2]);
    for my $u (@{ $p{users} }) {
        my $n = $rng->chance(0.5) ? 2 : 1;
        for my $i (0 .. $n - 1) {
            my $id = "$u.c$i";
            my $t = $i ? 0.2 + $rng->float(0.8) : 0;
            my @a = ([sprintf('%.3f', $t), 'session']);
            while (1) {
                $t += 0.02 + $rng->float(0.2);
                last if $t > $d;
                my $k = $rng->pick(@kinds);
                my @arg = $k eq 'gated' ? (1 + $rng->below(4))
                    : $k eq 'pause' ? (sprintf('%.3f', $rng->float(0.3)))
                    : ();
                push @a, [sprintf('%.3f', $t), $k, @arg];
            }
            push @{ $p{clients} }, { id => $id, user => $u, actions => \@a };
        }
    }

    # wrong passwords in bursts (with an unlock some time after each), and
    # the administrator, whose revocations near a burst leave its user be
    my @admin;
    my @bursts;
    for (1 .. ($rng->chance(0.45) ? 1 + $rng->below(2) : 0)) {
        my $t = 0.4 * $d + $rng->float(0.6 * $d);
        my $u = $p{users}[$rng->below($nu)];
        push @bursts, [sprintf('%.3f', $t), $u, 7 + $rng->below(6)];
        push @admin, [$t + 1.5 + $rng->float(1.5), 'unlock', $u];
    }
    $p{bursts} = \@bursts if @bursts;
    for (1 .. 2 + $rng->below(5)) {
        my $t = 0.2 + $rng->float($d - 0.2);
        my $i = $rng->below($nu);
        my $what = $rng->pick(['revoke_fp', 4], ['revoke_user', 2],
            ['reset', 2], ['unlock', 2], ['delete', 1]);
        for (1 .. $nu - 1) {
            my $u = $p{users}[$i];
            last unless $what =~ /^revoke/ && grep {
                $_->[1] eq $u && $t > $_->[0] - 2 && $t < $_->[0] + 1.5
            } @bursts;
            $i = ($i + 1) % $nu;
        }
        my $u = $p{users}[$i];
        push @admin, [$t, $what, $u];
        push @admin, [$t + 0.2 + $rng->float(0.8), 'add', $u]
            if $what eq 'delete';
    }
    $p{admin} = [map { [sprintf('%.3f', $_->[0]), @$_[1, 2]] }
        sort { $a->[0] <=> $b->[0] } @admin];

    # how many certificates each user may need (one more per revocation)
    my %certs = map { $_ => 1 } @{ $p{users} };
    $certs{ $_->[2] }++ for grep { $_->[1] =~ /^revoke/ } @{ $p{admin} };
    $p{certs} = \%certs;
    return \%p;
}

sub describe {
    my ($p) = @_;
    my $nc = scalar @{ $p->{clients} };
    my $na = scalar @{ $p->{admin} };
    my $nb = scalar @{ $p->{bursts} || [] };
    my $chaos = $p->{chaos}
        ? sprintf('redis %s at %.1fs%s', $p->{chaos}[0], $p->{chaos}[1],
            $p->{chaos}[0] eq 'restart' ? '' : sprintf(' for %.1fs', $p->{chaos}[2]))
        : 'redis steady';
    return sprintf('%d users, %d clients, %d admin commands, %d bursts, '
        . 'scrypt cost %d, %.1fs, %s', scalar @{ $p->{users} }, $nc, $na,
        $nb, $p->{cost}, $p->{duration}, $chaos);
}

sub cert_name { "$_[1]-c$_[2]" }

sub fp_of {
    my ($self, $name) = @_;
    return $self->{fps}{$name} //= $self->fingerprint($name);
}

# nginx's ecodoc_scrypt for the schedule: a reload, waiting for the new
# workers
sub set_cost {
    my ($self, $cost) = @_;
    return if $self->{cost} == $cost;
    my %o = %{ $self->{conf_opts} || {} };
    $o{directives} = { %{ $o{directives} || {} }, ecodoc_scrypt => "$cost 8 1" };
    $self->{conf_opts} = \%o;
    $self->write_nginx_conf(%o);
    my $master = $self->{procs}{nginx};
    my %old = map { $_ => 1 } workers($master);
    kill 'HUP', $master;
    my $deadline = time + 15;
    while (time < $deadline) {
        my @w = workers($master);
        last if @w == 2 && !grep { $old{$_} } @w;
        sleep 0.05;
    }
    $self->{cost} = $cost;
}

sub workers {
    my ($master) = @_;
    open(my $fh, '<', "/proc/$master/task/$master/children") or return;
    my $l = <$fh> // '';
    return split ' ', $l;
}

###############################################################################
# one schedule

# schedule($seed) -> { seed, plan, violations => [...], warnings, stats }
sub schedule {
    my ($self, $seed) = @_;
    my $p = plan($seed);
    my $started = time;
    my $sdir = $self->{sdir} = $self->path("race/$seed");
    remove_tree($sdir);
    make_path($sdir);

    # the certificates (made once, kept for later schedules)
    for my $u (@{ $p->{users} }) {
        for my $i (0 .. $p->{certs}{$u} - 1) {
            my $n = $self->cert_name($u, $i);
            $self->cert($n, cn => $u);
            $self->fp_of($n);
        }
    }
    $self->set_cost($p->{cost});
    $self->redis_ready();
    $self->redis_cmd('FLUSHDB');
    $self->gate_ready($self->cert_name($p->{users}[0], 0));

    my $backend_off = -s $self->{backend_log} || 0;
    my $crashes = scalar($self->crashes);

    # the users, added at once (and their first certificate)
    my @pids;
    for my $u (@{ $p->{users} }) {
        $self->write_state("cert.$u", 0);
        push @pids, $self->fork_actor("setup.$u", sub {
            my ($log) = @_;
            $self->admin_cmd($log, 'add', $u, $p->{cost});
        });
    }
    waitpid($_, 0) for @pids;
    delete @{ $self->{live} }{@pids};

    my $t0 = $p->{t0} = time + 0.1;
    my %actors;
    for my $c (@{ $p->{clients} }) {
        $actors{ $self->fork_actor("client.$c->{id}", sub {
            $self->client_main($p, $c, $t0, @_);
        }) } = $c->{id};
    }
    $actors{ $self->fork_actor('admin', sub {
        $self->admin_main($p, $t0, @_);
    }) } = 'admin';
    my $i = 0;
    for my $b (@{ $p->{bursts} || [] }) {
        my $n = $i++;
        $actors{ $self->fork_actor("burst$n", sub {
            $self->burst_main($p, $b, $n, $t0, @_);
        }) } = "burst$n";
    }
    my $watcher = $self->fork_actor('watcher', sub {
        $self->watcher_main(@_);
    });

    # the parent does what happens to Redis, and waits
    my @chaos = $self->chaos_steps($p, $t0);
    my $deadline = $t0 + $p->{duration} + 60;
    my $overrun = 0;
    while (%actors) {
        while (@chaos && time >= $chaos[0][0]) {
            my $step = shift @chaos;
            $step->[1]->();
        }
        for my $pid (keys %actors) {
            delete $actors{$pid} if waitpid($pid, WNOHANG) == $pid;
        }
        last unless %actors;
        if (time > $deadline && !$overrun++) {
            kill 'TERM', keys %actors;
            $deadline = time + 5;
        } elsif ($overrun && time > $deadline) {
            kill 'KILL', keys %actors;
            waitpid($_, 0) for keys %actors;
            last;
        }
        sleep 0.01;
    }
    $self->redis_ready();      # continued, whatever step was left
    sleep 0.3;                 # scripts sent before a pause ran by now
    kill 'TERM', $watcher;
    waitpid($watcher, 0);
    $self->{live} = {};

    # what the schedule left
    my $final = $self->snapshot();
    my @audit = $self->audit_all();
    my @backend = $self->backend_since($backend_off);
    my @recs = $self->read_logs($sdir);
    my @new_crashes = ($self->crashes)[$crashes .. scalar($self->crashes) - 1];

    # kept with the logs (when the schedule fails, or with ECODOC_KEEP)
    $self->write_file("$sdir/audit.jsonl", join '', map { $JSON->encode($_) . "\n" } @audit);
    $self->write_file("$sdir/final.json", $JSON->encode($final) . "\n");
    $self->write_file("$sdir/backend.jsonl", join '', map { $JSON->encode($_) . "\n" } @backend);
    $self->write_file("$sdir/plan.json", $JSON->encode($p) . "\n");

    $p->{overrun} = $overrun;
    my $res = check($p, \@recs, \@backend, $final, \@audit);
    push @{ $res->{violations} }, 'the schedule overran: its actors had no'
        . ' answer in 60 s and were killed' if $overrun;
    push @{ $res->{violations} }, map { "nginx: $_" } @new_crashes;
    $res->{seed} = $seed;
    $res->{plan} = $p;
    $res->{elapsed} = time - $started;
    remove_tree($sdir) unless $ENV{ECODOC_KEEP} || @{ $res->{violations} };
    return $res;
}

# Redis answers (running, continued)
sub redis_ready {
    my ($self) = @_;
    kill 'CONT', $self->{procs}{redis} if $self->{procs}{redis};
    $self->redis_start() unless $self->redis_running;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $r = eval { $self->redis_cmd('PING') };
        return 1 if defined $r && $r eq 'PONG';
        sleep 0.05;
    }
    croak "Redis does not answer";
}

# both workers talk to Redis again (after a restart they reconnect with a
# backoff of up to 2 s): an unbound certificate is sent to sign-up
sub gate_ready {
    my ($self, $cert) = @_;
    my $deadline = time + 15;
    my $good = 0;
    while (time < $deadline) {
        my ($r) = $self->req(GET => '/', cert => $cert, timeout => 5);
        $good = $r->{status} == 303 ? $good + 1 : 0;
        return 1 if $good >= 6;
        sleep 0.05;
    }
    croak "the gate does not recover:\n" . $self->logs('nginx');
}

sub chaos_steps {
    my ($self, $p, $t0) = @_;
    my $c = $p->{chaos} or return;
    my ($what, $at, $len) = @$c;
    my $log = $self->open_log('chaos');
    my $rec = sub { log_rec($log, { kind => 'chaos', what => $_[0], t => time }) };
    if ($what eq 'stop') {
        return (
            [$t0 + $at, sub { kill 'STOP', $self->{procs}{redis}; $rec->('SIGSTOP') }],
            [$t0 + $at + $len, sub { kill 'CONT', $self->{procs}{redis}; $rec->('SIGCONT') }],
        );
    }
    if ($what eq 'pause') {
        return ([$t0 + $at, sub {
            eval { $self->redis_cmd('CLIENT', 'PAUSE', int($len * 1000), 'ALL') };
            $rec->('CLIENT PAUSE ' . int($len * 1000));
        }]);
    }
    return ([$t0 + $at, sub {
        # SHUTDOWN SAVE: nothing written between the dump and the exit
        eval { $self->redis_cmd('SHUTDOWN', 'SAVE') };
        $self->reap('redis', 'TERM', 10);
        $rec->('SHUTDOWN SAVE');
        $self->redis_start();
        $rec->('restarted');
    }]);
}

###############################################################################
# actors: forked children, each writing its own log of JSON lines

sub fork_actor {
    my ($self, $name, $code) = @_;
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    return $self->{live}{$pid} = $pid if $pid;
    $self->{live} = {};
    $SIG{$_} = 'DEFAULT' for qw(INT HUP);
    $SIG{TERM} = sub { POSIX::_exit(0) };
    srand($$ ^ int(time * 1000));    # the children's random passwords differ
    my $ok = eval {
        my $log = $self->open_log($name);
        $code->($log);
        1;
    };
    if (!$ok) {
        my $log = $self->open_log($name);
        log_rec($log, { kind => 'error', actor => $name, error => "$@" });
    }
    POSIX::_exit(0);
}

sub open_log {
    my ($self, $name) = @_;
    sysopen(my $fh, "$self->{sdir}/$name.log", O_WRONLY | O_APPEND | O_CREAT)
        or croak "$name.log: $!";
    return $fh;
}

sub log_rec {
    my ($fh, $rec) = @_;
    syswrite($fh, $JSON->encode($rec) . "\n");
}

sub read_logs {
    my ($self, $dir) = @_;
    my @recs;
    for my $f (sort glob("$dir/*.log")) {
        open(my $fh, '<', $f) or next;
        while (my $l = <$fh>) {
            my $r = eval { $JSON->decode($l) } or next;
            push @recs, $r;
        }
    }
    return @recs;
}

sub backend_since {
    my ($self, $off) = @_;
    open(my $fh, '<', $self->{backend_log}) or return;
    seek($fh, $off, 0);
    my @r;
    while (my $l = <$fh>) {
        my $r = eval { $JSON->decode($l) } or next;
        push @r, $r;
    }
    return @r;
}

# small shared state between the actors of a schedule: files
# "cert.U" (the index of U's current certificate: the administrator
# re-enrolls after a revocation) and "pw.U" (the password U's clients
# know: the administrator's after add/reset, a client's after a change;
# the newest by the time its command or request ended wins)
sub write_state {
    my ($self, $name, $value, $at) = @_;
    my $f = "$self->{sdir}/$name";
    open(my $lk, '>>', "$f.lock") or croak "$f.lock: $!";
    flock($lk, LOCK_EX);
    if (defined $at) {
        my $cur = $self->read_state($name);
        if (defined $cur) {
            my ($t) = split /\t/, $cur;
            return if $t > $at;
        }
        $value = "$at\t$value";
    }
    open(my $fh, '>', "$f.tmp") or croak "$f.tmp: $!";
    print {$fh} $value;
    close $fh;
    rename("$f.tmp", $f) or croak "rename $f: $!";
    close $lk;
}

sub read_state {
    my ($self, $name) = @_;
    my $v = $self->read_file("$self->{sdir}/$name");
    return $v;
}

sub known_password {
    my ($self, $u) = @_;
    my $v = $self->read_state("pw.$u") // return '';
    return (split /\t/, $v, 2)[1];
}

sub current_cert {
    my ($self, $u) = @_;
    my $i = $self->read_state("cert.$u") // 0;
    return $self->cert_name($u, $i);
}

sub sleep_until {
    my ($t) = @_;
    my $d = $t - time;
    sleep $d if $d > 0;
}

###############################################################################
# HTTP: one TLS connection per request; the send time is taken right
# before the request is written, the answer time when it has been read

sub ssl_ctx {
    my ($self, $cert) = @_;
    my $key = defined $cert ? $cert : '';
    return $self->{ctx}{$key} //= IO::Socket::SSL::SSL_Context->new(
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file     => $self->path('ca.crt'),
        defined $cert ? (SSL_cert_file => $self->path("$cert.crt"),
            SSL_key_file => $self->path("$cert.key")) : (),
    ) || croak "SSL context: " . IO::Socket::SSL::errstr();
}

# req(METHOD, PATH, cert, cookie, cookies, form, timeout)
#   -> ($response, $sent, $answered)
sub req {
    my ($self, $method, $path, %o) = @_;
    my $timeout = $o{timeout} || $CLIENT_TIMEOUT;
    my @h = ('Host' => "localhost:$self->{port}", 'Accept-Language' => 'en');
    my $body;
    if ($o{form}) {
        $body = Ecodoc::Test::form_body(@{ $o{form} });
        push @h, 'Content-Type' => 'application/x-www-form-urlencoded',
            'Content-Length' => length $body;
    }
    my %jar = %{ $o{cookies} || {} };
    $jar{$Ecodoc::Test::COOKIE} = $o{cookie} if defined $o{cookie};
    delete $jar{$_} for grep { !defined $jar{$_} || $jar{$_} eq '' } keys %jar;
    push @h, 'Cookie' => join('; ', map { "$_=$jar{$_}" } sort keys %jar)
        if %jar;
    push @h, 'Connection' => 'close';
    my $req = "$method $path HTTP/1.1\r\n";
    while (my ($n, $v) = splice @h, 0, 2) {
        $req .= "$n: $v\r\n";
    }
    $req .= "\r\n" . ($body // '');

    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp',
        Timeout => $timeout, SSL_reuse_ctx => $self->ssl_ctx($o{cert}),
        SSL_hostname => 'localhost', SSL_verifycn_scheme => 'http',
        SSL_verifycn_name => 'localhost');
    unless ($s) {
        my $t = time;
        return ({ status => 0, headers => {}, body => '', text => '',
            error => 'connect: ' . ($IO::Socket::SSL::SSL_ERROR || $!) },
            $t, $t);
    }
    my ($raw, $err, $sent) = Ecodoc::Test::exchange($s, $req, $timeout);
    my $answered = time;
    close $s;
    my $r = Ecodoc::Test::parse_response($raw, $method);
    $r->{error} = $err if $err;
    return ($r, $sent // $answered, $answered);
}

# a form: GET for its token (the page's cookies kept), then the POST
sub form_post {
    my ($self, $page, $cert, $cookie, @fields) = @_;
    my ($get) = $self->req(GET => $page, cert => $cert, cookie => $cookie);
    my %jar = %{ cookies($get) };
    $jar{$Ecodoc::Test::COOKIE} = $cookie if defined $cookie;
    return $self->req(POST => $page, cert => $cert, cookies => \%jar,
        form => [@fields, csrf => form_token($get) // '']);
}

# what a page's answer means
sub outcome {
    my ($kind, $r) = @_;
    my ($s, $x) = ($r->{status}, $r->{text} // '');
    if ($kind eq 'login' || $kind eq 'wrong') {
        return 'ok' if $s == 303 && defined cookie($r) && cookie($r) ne '';
    } elsif ($kind eq 'signup') {
        return 'ok' if $s == 200 && $x =~ /Sign-up is complete\./;
        return 'bound' if $s == 409 && $x =~ /This certificate has already/;
    } elsif ($kind eq 'change') {
        return 'ok' if $s == 200 && $x =~ /Your password has been changed\./;
    } elsif ($kind eq 'logout') {
        return 'ok' if $s == 200;
    }
    return 'wrong' if $s == 401 && $x =~ /is incorrect\./;
    return 'locked' if $s == 403 && $x =~ /This user ID is locked\./;
    return 'notreg' if $s == 403 && $x =~ /not registered for this user ID/;
    return 'revoked' if $s == 403 && $x =~ /has been revoked/;
    return 'busy' if $s == 503 && $x =~ /Please try again\./;
    return 'unavailable' if $s == 503;
    return 'noanswer' if $s == 0;
    return "http$s";
}

###############################################################################
# a client: its planned actions, each at its time (or as soon as the one
# before has ended); what it knows (password, certificate) it reads from
# the shared state before each action

sub client_main {
    my ($self, $p, $c, $t0, $log) = @_;
    my $u = $c->{user};
    my %st = (cookie => undef, cert => '', bound => 0, n => 0, changes => 0);
    my $stop = $t0 + $p->{duration} + 3;

    my $post = sub {
        my ($kind, $page, @fields) = @_;
        my ($r, $ts, $tr) = $self->form_post($page, $st{cert},
            $kind eq 'signup' || $kind eq 'login' || $kind eq 'wrong'
                ? undef : $st{cookie}, @fields);
        my $o = outcome($kind, $r);
        my $rec = { kind => $kind, actor => $c->{id}, user => $u,
            cert => $st{cert}, fp => $self->fp_of($st{cert}), ts => $ts,
            tr => $tr, status => $r->{status}, outcome => $o };
        if ($o eq 'ok' && ($kind eq 'login' || $kind eq 'wrong')) {
            $st{cookie} = cookie($r);
            $rec->{initial} = ($self->location_path($r) // '') eq
                '/ecodoc/password' ? 1 : 0;
        }
        $st{cookie} = cookie($r) if $o eq 'ok' && $kind eq 'change'
            && defined cookie($r) && cookie($r) ne '';
        $st{cookie} = undef if $kind eq 'logout'
            || $o eq 'locked' || $o eq 'revoked';
        $st{bound} = 1 if $kind eq 'signup' && ($o eq 'ok' || $o eq 'bound');
        $st{bound} = 0 if $o eq 'notreg';
        log_rec($log, $rec);
        return ($o, $rec);
    };
    my $gated = sub {
        my $rid = "$p->{seed}-$c->{id}-" . ++$st{n};
        my ($r, $ts, $tr) = $self->req(GET => "/race/$rid", cert => $st{cert},
            cookie => $st{cookie});
        log_rec($log, { kind => 'gated', actor => $c->{id}, user => $u,
            rid => $rid, cert => $st{cert}, fp => $self->fp_of($st{cert}),
            ts => $ts, tr => $tr, status => $r->{status},
            session => defined $st{cookie} ? 1 : 0 });
        return $r->{status};
    };
    my $change = sub {
        my $cur = $self->known_password($u);
        my $new = sprintf('Race-%s-%d-%d-%d', $c->{id}, $p->{seed} % 100000,
            ++$st{changes}, int(rand(1e6)));
        my ($o, $rec) = $post->('change', '/ecodoc/password',
            current => $cur, new => $new, new2 => $new);
        $self->write_state("pw.$u", $new, $rec->{tr}) if $o eq 'ok';
        return $o;
    };
    my $login = sub {
        my ($o, $rec) = $post->('login', '/ecodoc/login',
            user => $u, password => $self->known_password($u));
        return ($o, $rec);
    };

    for my $a (@{ $c->{actions} }) {
        my ($at, $what, @arg) = @$a;
        sleep_until($t0 + $at);
        last if time > $stop;
        my $cert = $self->current_cert($u);
        if ($cert ne $st{cert}) {    # re-enrolled: a new certificate
            %st = (%st, cert => $cert, cookie => undef, bound => 0);
        }
        if ($what eq 'session') {
            # whatever it takes to use the service: sign-up, login, the
            # change of an initial password; then one gated request
            unless ($st{bound}) {
                $post->('signup', '/ecodoc/signup', user => $u,
                    password => $self->known_password($u));
            }
            my ($o, $rec) = $login->();
            if ($o eq 'notreg') {
                $post->('signup', '/ecodoc/signup', user => $u,
                    password => $self->known_password($u));
                ($o, $rec) = $login->();
            }
            $o = $change->() if $o eq 'ok' && $rec->{initial};
            $gated->() if $o eq 'ok';
        } elsif ($what eq 'gated') {
            $gated->() for 1 .. $arg[0];
        } elsif ($what eq 'login') {
            $login->();
        } elsif ($what eq 'change') {
            $change->();
        } elsif ($what eq 'logout') {
            $post->('logout', '/ecodoc/logout');
        } elsif ($what eq 'wrong') {
            $post->('wrong', '/ecodoc/login', user => $u,
                password => 'Wrong-password-' . int(rand(1e6)));
        } elsif ($what eq 'signup') {
            $post->('signup', '/ecodoc/signup', user => $u,
                password => $self->known_password($u));
        } elsif ($what eq 'pause') {
            sleep $arg[0];
        }
    }
}

# a burst: n wrong passwords for U, each on its own connection, all sent
# at the same moment (each child has its form first, then they wait for
# the word)
sub burst_main {
    my ($self, $p, $b, $i, $t0, $log) = @_;
    my ($at, $u, $n) = @$b;
    sleep_until($t0 + $at - 1);
    # a burst counts against U only with a certificate bound to U: wait
    # (a while) for the current one to be signed up
    my $cert;
    while (1) {
        $cert = $self->current_cert($u);
        my $fp = $self->fp_of($cert);
        my $bound = eval { $self->redis_cmd('HGET', $self->rkey("cert:$fp"), 'user') };
        last if (defined $bound && $bound eq $u) || time > $t0 + $at + 2;
        sleep 0.05;
    }
    pipe(my $ready_r, my $ready_w) or die "pipe: $!";
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @kids;
    for my $k (1 .. $n) {
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            $SIG{TERM} = sub { POSIX::_exit(0) };
            close $ready_r;
            close $go_w;
            eval {
                my ($get) = $self->req(GET => '/ecodoc/login', cert => $cert);
                syswrite($ready_w, 'r');
                sysread($go_r, my $buf, 1);    # EOF: go
                my ($r, $ts, $tr) = $self->req(POST => '/ecodoc/login',
                    cert => $cert, cookies => cookies($get),
                    form => [user => $u, password => "Burst-wrong-$k-$i",
                        csrf => form_token($get) // '']);
                log_rec($log, { kind => 'wrong', actor => "burst$i.$k",
                    user => $u, cert => $cert, fp => $self->fp_of($cert),
                    ts => $ts, tr => $tr, status => $r->{status},
                    outcome => outcome('wrong', $r) });
            };
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    close $ready_w;
    close $go_r;
    my $got = 0;
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 20;
        while ($got < $n) {
            my $k = sysread($ready_r, my $buf, $n - $got) or last;
            $got += $k;
        }
        alarm 0;
    };
    sleep_until($t0 + $at);
    log_rec($log, { kind => 'burst', user => $u, cert => $cert, t => time,
        ready => $got, n => $n });
    close $go_w;
    waitpid($_, 0) for @kids;
}

###############################################################################
# the administrator: ecodoc-ca commands, run as processes

sub admin_main {
    my ($self, $p, $t0, $log) = @_;
    for my $a (@{ $p->{admin} }) {
        my ($at, $what, $u) = @$a;
        sleep_until($t0 + $at);
        $self->admin_cmd($log, $what, $u, $p->{cost});
    }
}

sub admin_cmd {
    my ($self, $log, $what, $u, $cost) = @_;
    my @args;
    my $idx = $self->read_state("cert.$u") // 0;
    if ($what eq 'revoke_fp') {
        @args = ('revoke', '--fingerprint',
            $self->fp_of($self->cert_name($u, $idx)), '--reason',
            'keyCompromise', '--dir', $self->eca_dir);
    } elsif ($what eq 'revoke_user') {
        @args = ('revoke', '--user', $u, '--dir', $self->eca_dir);
    } elsif ($what eq 'reset') {
        @args = ('user', 'reset-password', $u, '--cost', $cost);
    } elsif ($what eq 'unlock') {
        @args = ('user', 'unlock', $u);
    } elsif ($what eq 'delete') {
        @args = ('user', 'delete', $u);
    } elsif ($what eq 'add') {
        @args = ('user', 'add', $u, '--cost', $cost);
    } else {
        croak "unknown admin command $what";
    }
    my $r = $self->ca_timed(@args);
    my @fps = $r->{out} =~ /^revoked(?: at the gate)?: ([0-9a-f]{64})\b/mg;
    @fps = ($args[2]) if !@fps && !$r->{exit} && $what eq 'revoke_fp';
    log_rec($log, { kind => 'cmd', cmd => $what, user => $u,
        args => join(' ', @args), ts => $r->{ts}, tr => $r->{tr},
        exit => $r->{exit}, fps => \@fps,
        err => substr($r->{err}, 0, 300) });
    # re-enrolled when the current certificate is revoked (whatever the
    # command said: revoke --user also takes what it finds bound then)
    if ($what =~ /^revoke/) {
        my $fp = $self->fp_of($self->cert_name($u, $idx));
        my $gone = eval { $self->redis_cmd('EXISTS', $self->rkey("revoked:$fp")) };
        $self->write_state("cert.$u", $idx + 1) if $gone || grep { $_ eq $fp } @fps;
    }
    return $r if $r->{exit};
    if ($what eq 'reset' || $what eq 'add') {
        my ($pw) = $r->{out} =~ /^initial password: (\S+)$/m;
        $self->write_state("pw.$u", $pw, $r->{tr}) if defined $pw;
    }
    return $r;
}

# ecodoc-ca as a process: { exit, out, err, ts (before the fork), tr
# (when it has exited) }
sub ca_timed {
    my ($self, @args) = @_;
    my $tag = $$ . '.' . ++$self->{ncmd};
    my ($out, $err) = ("$self->{sdir}/ca.$tag.out", "$self->{sdir}/ca.$tag.err");
    my $ts = time;
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', $out);
        open(STDERR, '>', $err);
        exec($self->{ca_tool}, $self->ca_redis_args,
            '--prefix', $self->{prefix}, @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $st = $?;
    my $tr = time;
    my %r = (ts => $ts, tr => $tr,
        exit => $st & 127 ? 128 + ($st & 127) : $st >> 8,
        out => $self->read_file($out) // '', err => $self->read_file($err) // '');
    unlink $out, $err;
    return \%r;
}

###############################################################################
# what Redis holds, read in one atomic script: the sessions that must not
# be there, the locked users, the failure counts, revoked certificates
# still bound (a warning)

my $SNAPSHOT = <<'LUA';
local P = ARGV[1]
local bad, locked, fails, warns = {}, {}, {}, {}
for _, k in ipairs(redis.call('KEYS', P .. 'sess:*')) do
  local sid = string.sub(k, #P + 6)
  if redis.call('TYPE', k)['ok'] ~= 'string' then
    bad[#bad + 1] = 'malformed|' .. sid
  else
    local v = redis.call('GET', k)
    local f, c, i, u = string.match(v, '^(%x+) (%d+) ([01]) (.+)$')
    if not f then
      bad[#bad + 1] = 'malformed|' .. sid
    else
      local pre = '|' .. u .. '|' .. f .. '|' .. sid
      if redis.call('EXISTS', P .. 'revoked:' .. f) == 1 then
        bad[#bad + 1] = 'revoked' .. pre
      end
      local b = redis.call('HGET', P .. 'cert:' .. f, 'user')
      if b ~= u then
        bad[#bad + 1] = 'unbound' .. pre .. '|' .. (b or '')
      end
      local st = redis.call('HMGET', P .. 'user:' .. u, 'pw', 'locked')
      if not st[1] then
        bad[#bad + 1] = 'deleted' .. pre
      elseif st[2] ~= '0' then
        bad[#bad + 1] = 'locked' .. pre
      end
    end
  end
end
for _, k in ipairs(redis.call('KEYS', P .. 'user:*')) do
  local u = string.sub(k, #P + 6)
  if not string.find(u, ':', 1, true)
     and redis.call('TYPE', k)['ok'] == 'hash' then
    local h = redis.call('HMGET', k, 'locked', 'failures')
    if h[1] == '1' then locked[#locked + 1] = u end
    fails[#fails + 1] = u .. '=' .. (h[2] or '0')
  end
end
for _, k in ipairs(redis.call('KEYS', P .. 'cert:*')) do
  local fp = string.sub(k, #P + 6)
  if redis.call('EXISTS', P .. 'revoked:' .. fp) == 1 then
    warns[#warns + 1] = 'bound-revoked|'
      .. (redis.call('HGET', k, 'user') or '') .. '|' .. fp
  end
end
return {bad, locked, fails, warns}
LUA

# snapshot() -> { ts, tr, bad => [...], locked => [...], failures => {U => n},
# warns => [...] } (or { error })
sub snapshot {
    my ($self) = @_;
    my $ts = time;
    my $r = eval { $self->redis_cmd('EVAL', $SNAPSHOT, 0, $self->{prefix}) };
    my $tr = time;
    return { ts => $ts, tr => $tr, error => "$@" } unless ref $r eq 'ARRAY';
    return {
        ts => $ts, tr => $tr,
        bad => $r->[0] || [], locked => $r->[1] || [],
        failures => { map { split /=/, $_, 2 } @{ $r->[2] || [] } },
        warns => $r->[3] || [],
    };
}

# the watcher: a snapshot every 100 ms while the schedule runs
sub watcher_main {
    my ($self, $log) = @_;
    while (1) {
        my $s = $self->snapshot();
        $s->{kind} = 'snap';
        log_rec($log, $s) unless $s->{error};
        sleep 0.1;
    }
}

# every record of every audit stream under the prefix (the security
# stream `audit`, and any other, e.g. one of aggregated refusals), oldest
# first: { t (seconds, from the ID), id, stream, event, user, fp, ... }
sub audit_all {
    my ($self) = @_;
    my %keys;
    my $cursor = 0;
    do {
        my $r = $self->redis_cmd('SCAN', $cursor, 'MATCH', "$self->{prefix}*",
            'COUNT', 1000, 'TYPE', 'stream');
        $cursor = $r->[0];
        $keys{$_} = 1 for @{ $r->[1] || [] };
    } while ($cursor ne '0');
    my @ev;
    for my $k (sort keys %keys) {
        my $r = $self->redis_cmd('XRANGE', $k, '-', '+') || [];
        for my $e (@$r) {
            my ($ms, $seq) = split /-/, $e->[0];
            push @ev, { @{ $e->[1] }, id => $e->[0], t => $ms / 1000,
                seq => $seq, stream => $k };
        }
    }
    return sort { $a->{t} <=> $b->{t} || $a->{seq} <=> $b->{seq} } @ev;
}

###############################################################################
# the checks

my $SLACK = 0.25;    # seconds between a client's clock and Redis' stream IDs
my %PASSWORD_KIND = map { $_ => 1 } qw(login wrong signup change);
my %REENABLE = map { $_ => 1 } qw(unlock reset delete add);

# check($plan, \@records, \@backend, $final_snapshot, \@audit)
#   -> { violations => [...], warnings => [...], stats => {...} }
sub check {
    my ($p, $recs, $backend, $final, $audit) = @_;
    my (@v, @w, %stats);

    my @cmds = grep { $_->{kind} eq 'cmd' } @$recs;
    my @reqs = grep { $_->{kind} !~ /^(?:cmd|snap|chaos|error|burst)\z/ } @$recs;
    my @snaps = grep { $_->{kind} eq 'snap' } @$recs;
    push @v, map { "actor $_->{actor} died: $_->{error}" }
        grep { $_->{kind} eq 'error' } @$recs;
    my %by_rid = map { $_->{rid} => $_ } grep { $_->{kind} eq 'gated' } @reqs;
    my @ok_cmds = grep { $_->{exit} == 0 } @cmds;

    # times relative to the schedule's start, for the messages
    my $t0 = $p->{t0} // 0;
    my $rel = sub { sprintf('%+.3fs', $_[0] - $t0) };

    # --- when each guarantee holds: revoked certificates from the end of
    # their revocation on; users from the end of an add, reset, deletion
    # or lock until something could have let them in again
    my %revoked_at;
    my @revokes = grep { $_->{cmd} =~ /^revoke/ } @cmds;
    for my $c (grep { !$_->{exit} } @revokes) {
        for my $fp (@{ $c->{fps} }) {
            $revoked_at{$fp} = $c
                if !$revoked_at{$fp} || $c->{tr} < $revoked_at{$fp}{tr};
        }
    }
    # and what the audit says was revoked while a revoke command ran (one
    # command at a time: their intervals do not overlap)
    for my $e (grep { ($_->{event} // '') eq 'revoked' } @$audit) {
        my ($c) = grep { $e->{t} >= $_->{ts} - 0.002 && $e->{t} <= $_->{tr} }
            @revokes or next;
        my $fp = $e->{fp} // next;
        $revoked_at{$fp} = $c
            if !$revoked_at{$fp} || $c->{tr} < $revoked_at{$fp}{tr};
    }
    my %windows;    # U -> [[from, to, why]]
    my $changes_after = sub {    # earliest change sent that may come after $t
        my ($u, $t) = @_;
        my ($first) = sort { $a <=> $b } map { $_->{ts} }
            grep { $_->{kind} eq 'change' && $_->{user} eq $u && $_->{tr} > $t }
            @reqs;
        return $first // 9e9;
    };
    my $reenabled_after = sub {  # earliest command that may undo a lock
        my ($u, $t) = @_;
        my ($first) = sort { $a <=> $b } map { $_->{ts} }
            grep { $REENABLE{ $_->{cmd} } && $_->{user} eq $u && $_->{tr} > $t }
            @cmds;
        return $first // 9e9;
    };
    for my $c (@ok_cmds) {
        my $u = $c->{user};
        if ($c->{cmd} eq 'add' || $c->{cmd} eq 'reset') {
            push @{ $windows{$u} }, [$c->{tr}, $changes_after->($u, $c->{ts}),
                "its initial password (user $c->{cmd} returned at "
                . $rel->($c->{tr}) . ") was not changed yet"];
        } elsif ($c->{cmd} eq 'delete') {
            my ($add) = sort { $a <=> $b } map { $_->{ts} } grep {
                $_->{cmd} eq 'add' && $_->{user} eq $u && $_->{tr} > $c->{ts}
            } @cmds;
            push @{ $windows{$u} }, [$c->{tr}, $add // 9e9,
                'it was deleted (user delete returned at '
                . $rel->($c->{tr}) . ')'];
        }
    }
    # locks: a password form answered "locked", or Redis showed it
    my @locks;
    for my $r (grep { $PASSWORD_KIND{ $_->{kind} } && $_->{outcome} eq 'locked' } @reqs) {
        push @locks, [$r->{user}, $r->{ts}, $r->{tr}, 'a password form answered "locked"', $r];
    }
    for my $s (@snaps) {
        push @locks, [$_, $s->{ts}, $s->{tr}, 'Redis showed it locked']
            for @{ $s->{locked} };
    }
    for my $l (@locks) {
        my ($u, $ts, $tr, $why) = @$l;
        push @{ $windows{$u} }, [$tr, $reenabled_after->($u, $ts),
            "it was locked ($why at " . $rel->($tr) . ')'];
    }

    # --- what reached the backend
    my %reached;
    my $prefix = "/race/$p->{seed}-";
    for my $b (@$backend) {
        my ($rid) = ($b->{target} // '') =~ m{^\Q$prefix\E(.*)$} or do {
            push @v, "the backend received $b->{target}, which no client of this schedule sent";
            next;
        };
        $rid = "$p->{seed}-$rid";
        my $q = $by_rid{$rid} or do {
            # (a client killed in an overrun logs nothing)
            push @v, "the backend received $rid, which no client logged"
                unless $p->{overrun};
            next;
        };
        $stats{backend}++;
        $reached{$rid} = 1;
        my $u = $b->{user} // '';
        my $fp = $b->{fp} // '';
        my $what = "request $rid (sent at " . $rel->($q->{ts}) . " by $q->{actor})";
        if ($u ne $q->{user} || $fp ne $q->{fp}) {
            push @v, "$what reached the backend as user '$u' certificate '$fp',"
                . " not as $q->{user} with $q->{cert} ($q->{fp})";
        }
        if (my $c = $revoked_at{$fp}) {
            push @v, "$what reached the backend with certificate $fp, revoked by"
                . " '$c->{args}' that returned at " . $rel->($c->{tr})
                if $q->{ts} > $c->{tr};
        }
        for my $win (@{ $windows{$u} || [] }) {
            my ($from, $to, $why) = @$win;
            push @v, "$what reached the backend as $u although $why"
                if $q->{ts} > $from && $q->{ts} < $to;
        }
    }

    # how often the guarantees above were put to the test: gated requests
    # sent while one of them had to refuse them
    for my $q (grep { $_->{kind} eq 'gated' } @reqs) {
        my $c = $revoked_at{ $q->{fp} };
        $stats{denied}++ if ($c && $q->{ts} > $c->{tr}) || grep {
            $q->{ts} > $_->[0] && $q->{ts} < $_->[1]
        } @{ $windows{ $q->{user} } || [] };
    }

    # --- what Redis holds: the final state and every watcher snapshot
    my (%bad, @bad_order, %seen);
    for my $s ((map { ['during the schedule', $_] } @snaps),
        ['at the end', $final])
    {
        my ($when, $snap) = @$s;
        if ($snap->{error}) {
            push @v, "Redis could not be read at the end: $snap->{error}";
            next;
        }
        $stats{snapshots}++;
        for my $b (@{ $snap->{bad} }) {
            my ($kind, $u, $fp, $sid, $other) = split /\|/, $b;
            my ($of, $why) = $kind eq 'revoked' ? (cert => 'revoked')
                : $kind eq 'unbound' ? (cert => defined $other && $other ne ''
                    ? "bound to $other" : 'bound to nobody')
                : $kind eq 'deleted' ? (user => 'deleted')
                : $kind eq 'locked' ? (user => 'locked')
                : (record => 'malformed');
            my $x = $bad{$sid} //= do {
                push @bad_order, $sid;
                { u => $u, fp => $fp, when => $when, at => $snap->{tr} };
            };
            push @{ $x->{$of} }, $why unless grep { $_ eq $why } @{ $x->{$of} || [] };
        }
        for (@{ $snap->{warns} || [] }) {
            my (undef, $u, $fp) = split /\|/;
            push @w, "certificate $fp is revoked but bound to '$u' ($when)"
                unless $seen{"warn|$fp"}++;
        }
    }
    for my $sid (@bad_order) {
        my $x = $bad{$sid};
        push @v, "a session of " . ($x->{u} // '?') . " with certificate "
            . ($x->{fp} // '?') . " in Redis ($x->{when}, first seen at "
            . $rel->($x->{at} // $t0) . ', sess:' . substr($sid // '', 0, 12)
            . '...), but ' . join('; ', map {
                $x->{$_} ? ("its " . ($_ eq 'cert' ? 'certificate' : $_) . ' is '
                    . join(' and ', @{ $x->{$_} })) : ()
            } qw(cert user record));
    }

    # --- the audit: every security event that happened is in it
    my %pool;    # "event|key" -> [times]
    for my $e (@$audit) {
        my $ev = $e->{event} // '';
        push @{ $pool{"$ev|" . ($e->{user} // '')} }, $e->{t};
        push @{ $pool{"$ev|fp:" . ($e->{fp} // '')} }, $e->{t}
            if $ev eq 'revoked';
    }
    my @need;    # [event|key, from, to, what]
    for my $r (grep { ($_->{outcome} // '') eq 'ok' } @reqs) {
        my $ev = { signup => 'signup', login => 'login', wrong => 'login',
            change => 'password_changed' }->{ $r->{kind} } or next;
        push @need, ["$ev|$r->{user}", $r->{ts}, $r->{tr},
            "$r->{kind} of $r->{user} by $r->{actor} answered at " . $rel->($r->{tr})];
        $stats{$r->{kind}}++;
    }
    for my $c (@ok_cmds) {
        my $ev = { add => 'user_added', reset => 'password_reset',
            unlock => 'unlock', delete => 'user_deleted' }->{ $c->{cmd} };
        my $what = "'$c->{args}' returned at " . $rel->($c->{tr});
        if ($ev) {
            push @need, ["$ev|$c->{user}", $c->{ts}, $c->{tr}, $what];
        } else {
            push @need, ["revoked|fp:$_", $c->{ts}, $c->{tr}, "$what ($_)"]
                for @{ $c->{fps} };
        }
        $stats{$c->{cmd}}++;
    }
    for my $n (sort { $a->[2] <=> $b->[2] } @need) {
        my ($key, $from, $to, $what) = @$n;
        my $ts = $pool{$key} || [];
        my ($i) = grep { $ts->[$_] >= $from - $SLACK && $ts->[$_] <= $to + $SLACK }
            0 .. $#$ts;
        if (defined $i) {
            splice @$ts, $i, 1;
        } else {
            my ($ev, $k) = split /\|/, $key, 2;
            push @v, "the audit has no '$ev' record for $k: $what";
        }
    }
    # a lock seen by a client is in the audit as 'lock'
    for my $l (grep { $_->[4] } @locks) {
        my ($u, $ts, $tr) = @$l;
        my ($since) = sort { $b <=> $a } map { $_->{ts} }
            grep { $REENABLE{ $_->{cmd} } && $_->{user} eq $u && $_->{tr} < $ts }
            @ok_cmds;
        $since //= 0;
        next if grep { ($_->{event} // '') eq 'lock' && ($_->{user} // '') eq $u
            && $_->{t} >= $since - $SLACK && $_->{t} <= $tr + $SLACK } @$audit;
        push @v, "the audit has no 'lock' record for $u, who was seen locked at "
            . $rel->($tr);
        last;
    }
    $stats{locks} = scalar(grep { $_->[4] } @locks);

    # --- never more than six wrong passwords checked between unlocks: the
    # *_failed records of each user, counted since the last unlock, reset,
    # add or deletion, or success (which resets the count). A check
    # reserved before an unlock but recorded after it (the unlock drops
    # the reservations in flight) counts for the time before: such checks
    # are allowed on top
    my %count;
    my %carry;
    my %last_unlock;
    for my $e (@$audit) {
        my $ev = $e->{event} // '';
        my $u = $e->{user} // '';
        if ($ev =~ /^(?:unlock|password_reset|user_added|user_deleted|login|signup|password_changed)\z/) {
            $count{$u} = 0;
            $last_unlock{$u} = $e->{t} if $ev eq 'unlock';
            $last_unlock{$u} = undef if $ev =~ /^(?:password_reset|user_added|user_deleted)\z/;
            my $lu = $last_unlock{$u};
            # password checks sent before the last unlock, still open now
            $carry{$u} = defined $lu ? scalar(grep {
                $PASSWORD_KIND{ $_->{kind} } && $_->{user} eq $u
                && ($_->{outcome} // '') ne 'ok'
                && $_->{ts} <= $lu + $SLACK && $_->{tr} >= $e->{t} - $SLACK
            } @reqs) : 0;
        } elsif ($ev =~ /_failed\z/) {
            my $n = ++$count{$u};
            my $max = $MAX_FAILURES + ($carry{$u} // 0);
            push @v, "$n wrong passwords of $u checked in a row (at most"
                . " $MAX_FAILURES" . ($carry{$u} ? " + $carry{$u} in flight at an unlock" : '')
                . "), the last at " . $rel->($e->{t})
                if $n == $max + 1;
        }
    }
    for my $u (sort keys %{ $final->{failures} || {} }) {
        my $f = $final->{failures}{$u};
        my $max = $MAX_FAILURES + ($carry{$u} // 0);
        push @v, "Redis holds failures=$f for $u at the end (at most $max)"
            if $f =~ /^\d+$/ && $f > $max;
    }

    $stats{requests} = scalar @reqs;
    $stats{gated} = scalar grep { $_->{kind} eq 'gated' } @reqs;
    $stats{revoked} = scalar keys %revoked_at;
    return { violations => \@v, warnings => \@w, stats => \%stats };
}

###############################################################################
# many schedules

# run(seed => N | first_seed => N, schedules => N, seconds => S,
#     stop => 1 (at the first schedule with a violation), say => sub {...})
sub run {
    my ($self, %o) = @_;
    my $say = $o{say} || sub { print @_ };
    $self->setup();
    my $start = time;
    my $first = defined $o{seed} ? $o{seed}
        : defined $o{first_seed} ? $o{first_seed}
        : (int(time * 1000) ^ ($$ << 16)) % 1000000000;
    my $max = defined $o{seed} ? 1 : $o{schedules} // 1e9;
    my $budget = $o{seconds} // 1e9;
    my (@all, %totals, @violating, $first_hit);
    my $n = 0;
    my $longest = 0;
    while ($n < $max) {
        last if $n && time - $start + $longest > $budget;
        my $seed = $first + $n;
        $n++;
        my $res = $self->schedule($seed);
        $longest = $res->{elapsed} if $res->{elapsed} > $longest;
        my $st = $res->{stats};
        $totals{$_} += $st->{$_} // 0 for keys %$st;
        my $nv = scalar @{ $res->{violations} };
        $say->(sprintf("schedule %d seed %d: %s; %d requests, %d reached the backend, "
            . "%d sent when they had to be refused, %d logins, %d revocations, %d locks seen,"
            . " %d snapshots: %d violation%s (%.1fs)\n",
            $n, $seed, describe($res->{plan}), $st->{requests} // 0,
            $st->{backend} // 0, $st->{denied} // 0,
            ($st->{login} // 0) + ($st->{wrong} // 0),
            $st->{revoked} // 0, $st->{locks} // 0, $st->{snapshots} // 0,
            $nv, $nv == 1 ? '' : 's', $res->{elapsed}));
        $say->("  warning: $_\n") for @{ $res->{warnings} };
        if ($nv) {
            $first_hit //= { schedule => $n, seed => $seed, after => time - $start };
            push @violating, $res;
            for (@{ $res->{violations} }) {
                $say->("VIOLATION (seed $seed): $_\n");
            }
            $say->("  replay: " . $self->replay($seed) . "\n");
            last if $o{stop};
        }
        push @all, { seed => $seed, violations => $res->{violations} };
    }
    my $nv = 0;
    $nv += @{ $_->{violations} } for @violating;
    return {
        schedules  => $n,
        violations => [map { my $s = $_->{seed}; map { "seed $s: $_" } @{ $_->{violations} } } @violating],
        violating  => [map { $_->{seed} } @violating],
        first      => $first_hit,
        totals     => \%totals,
        elapsed    => time - $start,
        first_seed => $first,
    };
}

sub replay {
    my ($self, $seed) = @_;
    my $nginx = $ENV{ECODOC_NGINX} ? "ECODOC_NGINX=$ENV{ECODOC_NGINX} " : '';
    return "RACE_SEED=$seed ${nginx}ECODOC_MODULE=$self->{module} "
        . "ECODOC_CA=$self->{ca_tool} perl scripts/race.pl";
}

1;
