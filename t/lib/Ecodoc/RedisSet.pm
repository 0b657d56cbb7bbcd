package Ecodoc::RedisSet;

# A Redis set for the high-availability tests: one master, N replicas and
# M redis-sentinels on loopback, optionally all over TLS with certificates
# of the test's CA, started as children of an Ecodoc::Test (which stops
# them at the end, also when a test dies).
#
#   my $t = Ecodoc::Test->new();
#   my $set = Ecodoc::RedisSet->new($t, replicas => 2, sentinels => 3,
#       tls => 1, password => 'pw', sentinel_password => 'spw');
#   $t->start(redis_set => $set, redis_conf => $set->nginx_conf,
#       ca_redis => $set->ca_args);
#   my $old = $set->kill_master;
#   my ($new, $secs) = $set->wait_new_master($old, 30);
#   $set->restart($old);                  # comes back as a replica
#
# Options: name (the master's name at the sentinels, "ecodoc"),
# down_after (ms, 1000), failover_timeout (ms, 3000), quorum (2),
# tls_auth_clients (Redis asks clients for a certificate: 'no').

use strict;
use warnings;

use Carp qw(croak);
use IO::Socket::INET;
use IO::Socket::SSL;
use Test::More ();
use Time::HiRes qw(sleep time);

use Ecodoc::Test;

sub new {
    my ($class, $t, %o) = @_;
    my $self = bless {
        t                 => $t,
        name              => $o{name} // 'ecodoc',
        replicas          => $o{replicas} // 2,
        sentinels         => $o{sentinels} // 3,
        tls               => $o{tls} ? 1 : 0,
        tls_auth_clients  => $o{tls_auth_clients} // 'no',
        password          => $o{password},
        sentinel_password => $o{sentinel_password},
        down_after        => $o{down_after} // 1000,
        failover_timeout  => $o{failover_timeout} // 3000,
        quorum            => $o{quorum} // 2,
        dir               => $t->path('set'),
    }, $class;

    my $sentinel = Ecodoc::Test::which('redis-sentinel');
    $self->{sentinel_cmd} = $sentinel ? [$sentinel]
        : [Ecodoc::Test::which('redis-server'), '--sentinel'];

    mkdir $self->{dir};
    $t->make_ca();
    if ($self->{tls}) {
        # both ends of replication and of the sentinels' links: serverAuth
        # and clientAuth; another CA's certificate for the refusal tests
        $t->issue('redis', subject => '/O=Ecodoc Test/CN=localhost',
            ext => 'redis');
        $t->issue('redis-client', subject => '/O=Ecodoc Test/CN=gateway',
            ext => 'client');
        $t->issue('redis-other', subject => '/O=Somebody Else/CN=localhost',
            ca => 'other-ca', ext => 'redis');
    }

    my $n = 1 + $self->{replicas};
    my @ports = Ecodoc::Test::free_ports($n + $self->{sentinels});
    $self->{nodes} = [splice @ports, 0, $n];
    $self->{sentinel_ports} = \@ports;

    my $master = $self->{nodes}[0];
    for my $i (0 .. $#{ $self->{nodes} }) {
        $self->node_start($self->{nodes}[$i], $i ? $master : undef);
    }
    $self->sentinel_start($_, $master) for @{ $self->{sentinel_ports} };
    $self->wait_ready(30);
    return $self;
}

# pair($t): a master, one replica and one sentinel (quorum 1), with the
# passwords redis-pw and sentinel-pw; the test is skipped without
# redis-sentinel. It returns once the replica acknowledges writes.
sub pair {
    my ($class, $t) = @_;
    Test::More::plan(skip_all =>
        'no redis-sentinel (Debian package redis-sentinel)')
        unless Ecodoc::Test::which('redis-sentinel');
    my $set = $class->new($t, replicas => 1, sentinels => 1, quorum => 1,
        password => 'redis-pw', sentinel_password => 'sentinel-pw');
    $set->wait_acked(1, 30);
    return $set;
}

###############################################################################
# processes

sub tls_conf {
    my ($self, $port, $cert) = @_;
    return () unless $self->{tls};
    my $t = $self->{t};
    $cert //= 'redis';
    return (
        "port 0",
        "tls-port $port",
        "tls-cert-file " . $t->path("$cert.crt"),
        "tls-key-file " . $t->path("$cert.key"),
        "tls-ca-cert-file " . $t->path('ca.crt'),
        "tls-auth-clients $self->{tls_auth_clients}",
        "tls-replication yes",
    );
}

sub write_conf {
    my ($self, $file, @lines) = @_;
    $self->{t}->write_file($file, join("\n", @lines, ''));
    return $self->{t}->path($file);
}

sub node_name { "redis-$_[1]" }

# node_start(PORT, MASTER_PORT or undef, CERT): a redis-server; a replica
# of MASTER_PORT when given
sub node_start {
    my ($self, $port, $master, $cert) = @_;
    my $d = "$self->{dir}/$port";
    mkdir $d;
    my @c = (
        "bind 127.0.0.1",
        $self->{tls} ? () : "port $port",
        "dir $d",
        "save \"\"",
        "appendonly no",
        "daemonize no",
        "protected-mode no",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
        $self->tls_conf($port, $cert),
    );
    if (defined $self->{password}) {
        push @c, "requirepass $self->{password}",
            "masterauth $self->{password}";
    }
    push @c, "replicaof 127.0.0.1 $master" if defined $master;
    my $conf = $self->write_conf("set/$port.conf", @c);
    my $name = $self->node_name($port);
    $self->{t}->spawn($name, $self->{t}->path("$name.log"),
        Ecodoc::Test::which('redis-server'), $conf);
    $self->wait_answer($port, 10);
}

sub sentinel_start {
    my ($self, $port, $master) = @_;
    my $n = $self->{name};
    my @c = (
        "bind 127.0.0.1",
        $self->{tls} ? () : "port $port",
        "dir $self->{dir}",
        "daemonize no",
        "protected-mode no",
        $self->tls_conf($port),
        "sentinel monitor $n 127.0.0.1 $master $self->{quorum}",
        "sentinel down-after-milliseconds $n $self->{down_after}",
        "sentinel failover-timeout $n $self->{failover_timeout}",
        "sentinel parallel-syncs $n 2",
    );
    push @c, "sentinel auth-pass $n $self->{password}"
        if defined $self->{password};
    if (defined $self->{sentinel_password}) {
        push @c, "requirepass $self->{sentinel_password}",
            "sentinel sentinel-pass $self->{sentinel_password}";
    }
    my $conf = $self->write_conf("set/sentinel-$port.conf", @c);
    my $name = "sentinel-$port";
    $self->{t}->spawn($name, $self->{t}->path("$name.log"),
        @{ $self->{sentinel_cmd} }, $conf);
    $self->wait_answer($port, 10, 1);
}

sub wait_answer {
    my ($self, $port, $timeout, $sentinel) = @_;
    my $deadline = time + $timeout;
    my $name = $sentinel ? "sentinel-$port" : $self->node_name($port);
    my $err;
    while (time < $deadline) {
        croak "$name exited:\n" . $self->{t}->logs($name)
            unless $self->{t}->alive($name);
        my $r = eval { $self->cmd($port, 'PING') };
        return 1 if defined $r && $r eq 'PONG';
        $err = $@;
        sleep 0.05;
    }
    croak "$name does not answer PING ($err):\n" . $self->{t}->logs($name);
}

# every sentinel knows the master, its replicas and the other sentinels
# (found through the master's hello channel, every 2 s)
sub wait_ready {
    my ($self, $timeout) = @_;
    my $deadline = time + $timeout;
    my $want_other = $self->{sentinels} - 1;
    while (time < $deadline) {
        my $ok = 1;
        for my $p (@{ $self->{sentinel_ports} }) {
            my $m = eval {
                +{ @{ $self->sentinel($p, 'MASTER', $self->{name}) } }
            } or do { $ok = 0; last };
            $ok = 0 unless ($m->{'num-slaves'} // 0) >= $self->{replicas}
                && ($m->{'num-other-sentinels'} // 0) >= $want_other
                && $m->{flags} eq 'master';
            last unless $ok;
        }
        return 1 if $ok;
        sleep 0.2;
    }
    croak "the sentinels do not see the whole set:\n"
        . join('', map { $self->{t}->logs("sentinel-$_") }
            @{ $self->{sentinel_ports} });
}

###############################################################################
# clients

sub socket_to {
    my ($self, $port, %o) = @_;
    my $t = $self->{t};
    my %a = (PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 3);
    return IO::Socket::INET->new(%a, Proto => 'tcp')
        unless $self->{tls};
    my $cert = $o{cert} // 'redis-client';
    return IO::Socket::SSL->new(%a,
        SSL_ca_file         => $t->path($o{ca} // 'ca.crt'),
        SSL_verify_mode     => SSL_VERIFY_PEER,
        SSL_verifycn_name   => 'localhost',
        SSL_verifycn_scheme => 'default',
        $cert ne '' ? (SSL_cert_file => $t->path("$cert.crt"),
                       SSL_key_file  => $t->path("$cert.key")) : ());
}

# cmd(PORT, @command) -> reply (as Ecodoc::Test::redis_cmd), to a node,
# with AUTH when the set has a password
sub cmd {
    my ($self, $port, @args) = @_;
    $port =~ s/^127\.0\.0\.1://;
    my $is_sentinel = grep { $_ == $port } @{ $self->{sentinel_ports} };
    my $pw = $is_sentinel ? $self->{sentinel_password} : $self->{password};
    my $s = $self->socket_to($port)
        or die "redis: cannot connect to 127.0.0.1:$port: "
            . ($self->{tls} ? IO::Socket::SSL::errstr() : $!) . "\n";
    my @cmds = ([@args]);
    unshift @cmds, ['AUTH', $pw] if defined $pw;
    return Ecodoc::Test::resp_exchange($s, @cmds);
}

sub sentinel {
    my ($self, $port, @args) = @_;
    return $self->cmd($port, 'SENTINEL', @args);
}

###############################################################################
# the set

sub name           { $_[0]{name} }
sub nodes          { map { "127.0.0.1:$_" } @{ $_[0]{nodes} } }
sub sentinel_addrs { map { "127.0.0.1:$_" } @{ $_[0]{sentinel_ports} } }

# the master as the sentinels name it now (the first that answers)
sub master {
    my ($self) = @_;
    for my $p (@{ $self->{sentinel_ports} }) {
        my $a = eval {
            $self->sentinel($p, 'get-master-addr-by-name', $self->{name})
        };
        return "$a->[0]:$a->[1]" if ref $a;
    }
    croak 'no sentinel answers';
}

sub master_port { (split /:/, $_[0]->master)[1] }

# the nodes but the master of now
sub replicas {
    my ($self) = @_;
    my $m = $self->master;
    return grep { $_ ne $m } $self->nodes;
}

# the role a node gives itself: master, slave (or undef: down)
sub role {
    my ($self, $addr) = @_;
    my $r = eval { $self->cmd($addr, 'ROLE') };
    return ref $r ? $r->[0] : undef;
}

# SIGKILL the master; returns its address
sub kill_master {
    my ($self) = @_;
    my $port = $self->master_port;
    $self->{t}->reap($self->node_name($port), 'KILL', 5);
    return "127.0.0.1:$port";
}

# wait until every sentinel names another master than OLD and that node
# says it is the master; returns (new address, seconds waited)
sub wait_new_master {
    my ($self, $old, $timeout) = @_;
    my $t0 = time;
    my $deadline = $t0 + ($timeout || 30);
    while (time < $deadline) {
        my %seen;
        for my $p (@{ $self->{sentinel_ports} }) {
            my $a = eval {
                $self->sentinel($p, 'get-master-addr-by-name', $self->{name})
            };
            $seen{ ref $a ? "$a->[0]:$a->[1]" : '' }++;
        }
        my @m = keys %seen;
        if (@m == 1 && $m[0] ne '' && $m[0] ne $old
            && ($self->role($m[0]) // '') eq 'master')
        {
            return ($m[0], time - $t0);
        }
        sleep 0.05;
    }
    croak "no new master within ${timeout}s:\n"
        . join('', map { $self->{t}->logs("sentinel-$_") }
            @{ $self->{sentinel_ports} });
}

# restart(ADDR): a killed node comes back (with its old configuration:
# the sentinels then make it a replica of the new master)
sub restart {
    my ($self, $addr, %o) = @_;
    my $port = (split /:/, $addr)[-1];
    my $name = $self->node_name($port);
    croak "$name is running" if $self->{t}->alive($name);
    $self->{t}->spawn($name, $self->{t}->path("$name.log"),
        Ecodoc::Test::which('redis-server'),
        "$self->{dir}/$port.conf");
    $self->wait_answer($port, 10);
    return $addr;
}

# wait until ADDR replicates the current master with a live link, and
# until the master has its acknowledgement of a write made after that (the
# replica's offset in the master's INFO replication): one that has just
# synced counts for WAIT only once it has acknowledged, up to a second
# after its ROLE says "connected"
sub wait_replica {
    my ($self, $addr, $timeout) = @_;
    my $deadline = time + ($timeout || 30);
    my $master = $self->master;
    my $port = (split /:/, $addr)[-1];
    my $connected;
    while (time < $deadline) {
        my $r = eval { $self->cmd($addr, 'ROLE') };
        $connected = ref $r && $r->[0] eq 'slave' && $r->[3] eq 'connected'
            && "$r->[1]:$r->[2]" eq $master;
        last if $connected;
        sleep 0.1;
    }
    croak "$addr is not a connected replica of $master" unless $connected;
    my $info = sub { eval { $self->cmd($master, 'INFO', 'replication') }
        // '' };
    $self->cmd($master, 'INCR', 'redisset:acked');
    my ($want) = $info->() =~ /^master_repl_offset:(\d+)/m
        or croak "$master: no master_repl_offset";
    while (time < $deadline) {
        my ($acked) = $info->()
            =~ /^slave\d+:ip=[^,]*,port=$port,[^\r\n]*?offset=(\d+)/m;
        return 1 if defined $acked && $acked >= $want;
        sleep 0.1;
    }
    croak "$addr does not acknowledge the writes of $master";
}

# wait_acked(N, TIMEOUT): a write on the master reaches N replicas (WAIT
# N). A replica that has just synced counts only once it has acknowledged
# the master, up to a second after its ROLE says "connected".
sub wait_acked {
    my ($self, $n, $timeout) = @_;
    my $deadline = time + ($timeout || 30);
    while (time < $deadline) {
        my $s = $self->socket_to($self->master_port);
        my @cmds = (['INCR', 'redisset:acked'], ['WAIT', $n, 1000]);
        unshift @cmds, ['AUTH', $self->{password}]
            if defined $self->{password};
        my $r = $s && eval { Ecodoc::Test::resp_exchange($s, @cmds) };
        return 1 if defined $r && !ref $r && $r >= $n;
        sleep 0.1;
    }
    croak "fewer than $n replicas acknowledge the master's writes";
}

sub stop_node {
    my ($self, $addr, $sig) = @_;
    my $port = (split /:/, $addr)[-1];
    $self->{t}->reap($self->node_name($port), $sig || 'TERM', 5);
}

# signal_sentinel(ADDR, SIG): STOP and CONT (a sentinel gone silent, and
# back), or TERM (stopped for good)
sub signal_sentinel {
    my ($self, $addr, $sig) = @_;
    my $name = 'sentinel-' . (split /:/, $addr)[-1];
    return $self->{t}->reap($name, 'TERM', 5) if $sig eq 'TERM';
    kill $sig, $self->{t}{procs}{$name} or croak "$name is not running";
}

sub stop {
    my ($self) = @_;
    $self->{t}->reap("sentinel-$_", 'TERM', 5) for @{ $self->{sentinel_ports} };
    $self->{t}->reap($self->node_name($_), 'TERM', 5) for @{ $self->{nodes} };
}

# nginx_conf(wait => '1 500ms', tls_name => NAME): the module's directives
# for this set, through its sentinels (over TLS, ecodoc_redis_tls_name
# localhost unless NAME is given)
sub nginx_conf {
    my ($self, %o) = @_;
    my $f = $self->tls_files;
    my $c = "    ecodoc_redis_sentinel $self->{name} "
        . join(' ', $self->sentinel_addrs) . ";\n";
    $c .= "    ecodoc_redis_sentinel_password $self->{sentinel_password};\n"
        if defined $self->{sentinel_password};
    $c .= "    ecodoc_redis_password $self->{password};\n"
        if defined $self->{password};
    if ($self->{tls}) {
        $c .= "    ecodoc_redis_tls on;\n"
            . "    ecodoc_redis_tls_trusted_certificate $f->{ca};\n"
            . "    ecodoc_redis_tls_certificate $f->{cert};\n"
            . "    ecodoc_redis_tls_certificate_key $f->{key};\n";
        # the name in the set's certificates: the master's is never
        # checked against the address a sentinel names
        $c .= "    ecodoc_redis_tls_name " . ($o{tls_name} // 'localhost')
            . ";\n";
    }
    $c .= "    ecodoc_redis_wait $o{wait};\n" if $o{wait};
    return $c;
}

# ca_args(wait => '1:500'): ecodoc-ca's options for this set
sub ca_args {
    my ($self, %o) = @_;
    my $f = $self->tls_files;
    my @a = ('--redis-sentinel',
        "$self->{name}@" . join(',', $self->sentinel_addrs));
    push @a, '--sentinel-password', $self->{sentinel_password}
        if defined $self->{sentinel_password};
    push @a, '--redis-password', $self->{password}
        if defined $self->{password};
    push @a, '--redis-tls-ca', $f->{ca}, '--redis-tls-cert', $f->{cert},
        '--redis-tls-key', $f->{key} if $self->{tls};
    push @a, '--redis-wait', $o{wait} if $o{wait};
    return \@a;
}

sub tls_files {
    my ($self) = @_;
    my $t = $self->{t};
    return {
        ca          => $t->path('ca.crt'),
        cert        => $t->path('redis-client.crt'),
        key         => $t->path('redis-client.key'),
        server_cert => $t->path('redis.crt'),
        server_key  => $t->path('redis.key'),
        other_cert  => $t->path('redis-other.crt'),
        other_key   => $t->path('redis-other.key'),
        other_ca    => $t->path('other-ca.crt'),
    };
}

1;
