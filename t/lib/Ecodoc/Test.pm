package Ecodoc::Test;

# Test harness for ngx_ecodoc_module: a private Redis, a throwaway CA made
# with the openssl CLI, nginx with the module in a temp prefix, the demo
# backend, an HTTPS client with client certificates, and the flows of the
# gate (sign-up, login, password change, logout).
#
#   use lib 't/lib';   # or prove -It/lib; the tests add it themselves
#   use Ecodoc::Test;
#   my $t = Ecodoc::Test->new()->start();    # skip_all if no module/CA
#   my $pw = $t->add_user('alice');
#   $t->cert('alice');
#   my $r = $t->signup('alice', 'alice', $pw);
#
# Everything it starts is a child of the test process and is stopped in
# an END block and on INT/TERM/HUP, also when a test dies. ECODOC_KEEP=1
# keeps the temp dir (its path is printed as a diagnostic).
#
# ECODOC_NGINX=PATH: the nginx binary (default: nginx in PATH, /usr/sbin);
# ECODOC_MODULE: the module built for it (`make test NGINX=1.30.4` sets
# both). nginx serves HTTP/2 beside HTTP/1.1 where it has the module; the
# client speaks HTTP/1.1, or HTTP/2 through curl after use_http2(1).
#
# Core Perl + IO::Socket::SSL only (and curl for HTTP/2).

use strict;
use warnings;
use utf8;

use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use Encode ();
use Exporter qw(import);
use Fcntl qw(:flock);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::SSL;
use MIME::Base64 qw(decode_base64);
use POSIX qw(WNOHANG);
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(sleep time);
use Test::More;

our @EXPORT_OK = qw(form_token cookie cookies set_cookie_line hdr is_local_path
    identity_headers backend_user urlencode form_body html_unescape);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my $ROOT = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)),
    '..', '..', '..'));

our $COOKIE = '__Host-ecodoc';

# `make test NGINX=VERSION` leaves NGINX in the environment, which nginx
# reads as the sockets of a binary upgrade ("invalid socket number"):
# never hand it on
delete $ENV{NGINX};

my $OWNER;          # pid of the test process; forked children are not it
my @INSTANCES;      # everything to stop at the end

# make test-asan (README "Sanitizers"): with ECODOC_SANITIZER_DIR=DIR each
# test file gets DIR/NAME.PID/ as the sanitizers' log_path (ASAN_OPTIONS,
# UBSAN_OPTIONS), so every process it starts (nginx and its workers,
# ecodoc-ca and its children) writes any report there, whatever happens
# to its stderr; at the end (after everything is stopped, so leaks at exit
# are in) a report fails the test file and is shown.
my ($SAN_DIR, $SAN_PID);
if (defined $ENV{ECODOC_SANITIZER_DIR} && $ENV{ECODOC_SANITIZER_DIR} ne '') {
    my $name = basename($0);
    $name =~ s/\.t\z//;
    $name =~ s/[^\w.-]/_/g;
    $SAN_PID = $$;
    $SAN_DIR = File::Spec->catdir(abs_path($ENV{ECODOC_SANITIZER_DIR}),
        "$name.$$");
    make_path($SAN_DIR);
    for my $v (qw(ASAN_OPTIONS UBSAN_OPTIONS)) {
        my @o = grep { $_ ne '' && !/^log_path=/ } split /:/, $ENV{$v} // '';
        $ENV{$v} = join ':', @o, "log_path=$SAN_DIR/report";
    }
}

# UBSan beside ASan (gcc 12) writes its reports to stderr whatever
# log_path says: what the processes wrote to their logs (nginx's error.log,
# where nginx sends its stderr, nginx.out, enroll.log) and ecodoc-ca's
# stderr are searched too
my $SAN_RE = qr/runtime error: |ERROR: (?:Address|Leak|UndefinedBehavior)Sanitizer/;
my @SAN_FOUND;

sub sanitizer_note {
    my ($what, $text) = @_;
    return unless defined $SAN_DIR && defined $text && $text =~ $SAN_RE;
    push @SAN_FOUND, "--- $what\n$text\n";
}

sub sanitizer_scan {
    my ($self) = @_;
    return unless defined $SAN_DIR && $self->{dir} && -d $self->{dir};
    for my $f (sort glob("$self->{dir}/*.log $self->{dir}/*.out "
        . "$self->{dir}/*.err"))
    {
        next unless -f $f;
        my $c = $self->read_file($f) // next;
        next unless $c =~ $SAN_RE;
        my @l = split /\n/, $c;
        my ($i) = grep { $l[$_] =~ $SAN_RE } 0 .. $#l;
        splice @l, 0, $i;
        splice @l, 60 if @l > 60;
        sanitizer_note($f, join("\n", @l));
    }
}

# true under make test-asan (the programs are built with the sanitizers)
sub sanitized { return defined $SAN_DIR }

# the reports written so far, each headed by its file's name ('' if none)
sub sanitizer_reports {
    return '' unless defined $SAN_DIR && -d $SAN_DIR;
    my $s = join '', @SAN_FOUND;
    for my $f (sort glob("$SAN_DIR/*")) {
        open(my $fh, '<:raw', $f) or next;
        local $/;
        my $c = <$fh> // '';
        close $fh;
        $s .= "--- $f\n$c\n";
    }
    rmdir $SAN_DIR if $s eq '';
    return $s;
}

###############################################################################
# construction, skipping

sub new {
    my ($class, %o) = @_;

    my $self = bless {
        plain     => $o{plain} ? 1 : 0,
        prefix    => defined $o{prefix} ? $o{prefix} : 't:',
        procs     => {},
        certs     => {},
    }, $class;

    my @missing;
    my $nginx = $ENV{ECODOC_NGINX};
    if (defined $nginx && $nginx ne '') {
        push @missing, "ECODOC_NGINX=$nginx is not an executable file"
            unless -f $nginx && -x _;
        $self->{nginx} = abs_path($nginx);
    } else {
        $self->{nginx} = which('nginx');
    }
    for my $bin (qw(redis-server openssl)) {
        push @missing, "$bin not found in PATH" unless which($bin);
    }
    push @missing, 'nginx not found in PATH' unless defined $self->{nginx};
    unless ($self->{plain}) {
        my $m = $ENV{ECODOC_MODULE};
        my $c = $ENV{ECODOC_CA};
        push @missing, !defined $m || $m eq ''
            ? 'ECODOC_MODULE is not set (path of ngx_http_ecodoc_module.so)'
            : !-f $m ? "ECODOC_MODULE=$m does not exist (module not built?)"
            : ();
        push @missing, !defined $c || $c eq ''
            ? 'ECODOC_CA is not set (path of the ecodoc-ca tool)'
            : !-x $c ? "ECODOC_CA=$c is not an executable file"
            : ();
        $self->{module} = defined $m ? abs_path($m) : undef;
        $self->{ca_tool} = defined $c ? abs_path($c) : undef;
    }
    if (@missing) {
        plan(skip_all => join('; ', @missing));
        exit 0;
    }

    $OWNER = $$ unless defined $OWNER;
    install_signal_handlers();

    $self->{dir} = tempdir('ecodoc-test-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $self->{dir};
    diag("test dir: $self->{dir}") if $ENV{ECODOC_KEEP};

    my @ports = free_ports(3);
    @{$self}{qw(port redis_port backend_port)} = @ports;

    for my $fh (Test::More->builder->output,
        Test::More->builder->failure_output, Test::More->builder->todo_output)
    {
        binmode $fh, ':encoding(UTF-8)';
    }

    push @INSTANCES, $self;
    return $self;
}

sub which {
    my ($bin) = @_;
    for my $d (split /:/, ($ENV{PATH} || '') . ':/usr/sbin:/sbin') {
        return "$d/$bin" if $d ne '' && -x "$d/$bin";
    }
    return undef;
}

# `nginx -t -p PREFIX -c CONF`: (exit code, what it printed). nginx -t
# returns from main() with its cycle still in a local (ngx_cycle is set
# only after the test), so under make test-asan LeakSanitizer would report
# all of nginx's configuration memory: leaks are not checked for it
sub nginx_test {
    my ($self, $prefix, $conf) = @_;
    local $ENV{ASAN_OPTIONS} = ($ENV{ASAN_OPTIONS} // '') . ':detect_leaks=0'
        if defined $SAN_DIR;
    my $out = `'$self->{nginx}' -t -p '$prefix' -c '$conf' 2>&1`;
    return ($? >> 8, $out);
}

# what `nginx -V` says, once per binary: { version => '1.30.4',
# args => the configure arguments }
my %NGINX_V;

sub nginx_v {
    my ($self) = @_;
    my $bin = $self->{nginx};
    return $NGINX_V{$bin} //= do {
        my $pid = open(my $fh, '-|') // croak "fork: $!";
        if ($pid == 0) {
            open(STDERR, '>&', \*STDOUT);
            exec { $bin } $bin, '-V' or POSIX::_exit(127);
        }
        local $/;
        my $out = <$fh> // '';
        close $fh;
        my ($v) = $out =~ m{^nginx version: nginx/(\d+\.\d+\.\d+)}m
            or croak "$bin -V: no version in:\n$out";
        my ($args) = $out =~ /^configure arguments: (.*)$/m;
        { version => $v, args => $args // '' };
    };
}

sub nginx         { $_[0]{nginx} }
sub nginx_version { $_[0]->nginx_v->{version} }

# nginx_at_least('1.25.1')
sub nginx_at_least {
    my ($self, $want) = @_;
    my @have = split /\./, $self->nginx_version;
    my @want = split /\./, $want;
    for my $i (0 .. 2) {
        return $have[$i] > $want[$i] if $have[$i] != $want[$i];
    }
    return 1;
}

# has_module('http_v2'): nginx was configured --with-http_v2_module
sub has_module {
    my ($self, $m) = @_;
    return $self->nginx_v->{args} =~ /(?:^|\s)--with-\Q$m\E_module(?:\s|\z)/
        ? 1 : 0;
}

sub free_ports {
    my ($n) = @_;
    my @socks = map {
        IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
            Proto => 'tcp', Listen => 1) or die "cannot bind: $@\n";
    } 1 .. $n;
    my @ports = map { $_->sockport } @socks;
    close $_ for @socks;
    return @ports;
}

sub dir          { $_[0]{dir} }
sub port         { $_[0]{port} }
sub redis_port   { $_[0]{redis_port} }
sub backend_port { $_[0]{backend_port} }
sub prefix       { $_[0]{prefix} }
sub origin       { 'https://localhost:' . $_[0]{port} }
sub path         { File::Spec->catfile($_[0]{dir}, $_[1]) }
# nginx's own files (configuration, logs, temp): DIR, or DIR/node-N/
sub ndir         { $_[0]{ndir} // $_[0]{dir} }
sub npath        { File::Spec->catfile($_[0]->ndir, $_[1]) }

###############################################################################
# start / stop everything

# start(%o): Redis, the CA (ca + server cert + other CA), nginx, backend.
#   http      => extra text for the http{} block
#   server    => extra text for the server{} block
#   main      => extra text for the main context
#   locations => replaces the default locations of the server
#   directives => { ecodoc_max_failures => 3, ecodoc_scrypt => undef, ... }
#                 overrides (undef removes) the default ecodoc_* directives;
#                 a list ref gives the directive once per element
#   redis_unix => 1: the module talks to Redis over a unix socket
#   workers    => N: worker_processes (default 1)
#   redis_set  => an Ecodoc::RedisSet, already started, instead of the
#                 private Redis: redis_cmd() goes to its master
#   redis_conf => the module's Redis directives, in place of "ecodoc_redis"
#   ca_redis   => [ecodoc-ca's Redis options], in place of "--redis ADDR"
#   redis_args => [more redis-server arguments for the private Redis]
sub start {
    my ($self, %o) = @_;
    $self->{conf_opts} = \%o;
    $self->make_ca();
    $self->{redis_set} = $o{redis_set};
    $self->{ca_redis} = $o{ca_redis};
    $self->redis_start(args => $o{redis_args}) unless $o{redis_set};
    $self->backend_start();
    $self->write_nginx_conf(%o);
    $self->nginx_start();
    return $self;
}

sub spawn {
    my ($self, $name, $out, @cmd) = @_;
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        eval {
            $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE);
            open(STDIN, '<', '/dev/null');
            open(STDOUT, '>>', $out) or die "$out: $!";
            open(STDERR, '>&', \*STDOUT) or die "dup: $!";
            exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
        };
        print STDERR $@;
        POSIX::_exit(127);
    }
    $self->{procs}{$name} = $pid;
    return $pid;
}

# stop a child: TERM (or the given signal), then KILL after $wait seconds
sub reap {
    my ($self, $name, $sig, $wait) = @_;
    my $pid = delete $self->{procs}{$name} or return;
    kill($sig || 'TERM', $pid);
    my $deadline = time + ($wait || 10);
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        return if $r == $pid || $r < 0;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub alive {
    my ($self, $name) = @_;
    my $pid = $self->{procs}{$name} or return 0;
    my $r = waitpid($pid, WNOHANG);
    if ($r == $pid) {
        delete $self->{procs}{$name};
        $self->{exit}{$name} = $?;
        return 0;
    }
    return 1;
}

sub wait_port {
    my ($self, $name, $port, $timeout) = @_;
    my $deadline = time + ($timeout || 10);
    while (time < $deadline) {
        croak "$name exited before listening on $port:\n" . $self->logs($name)
            unless $self->alive($name);
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $port, Proto => 'tcp', Timeout => 1);
        if ($s) {
            close $s;
            return 1;
        }
        sleep 0.05;
    }
    croak "$name does not listen on $port:\n" . $self->logs($name);
}

sub logs {
    my ($self, $name) = @_;
    my @f = $name eq 'nginx' ? map { $self->npath($_) } qw(nginx.out error.log)
        : $name eq 'redis' ? qw(redis.log) : ("$name.log");
    my $s = '';
    for my $f (@f) {
        my $c = $self->read_file($f);
        next unless defined $c;
        my @l = split /\n/, $c;
        splice @l, 0, @l - 30 if @l > 30;
        $s .= "--- $f\n" . join("\n", @l) . "\n";
    }
    return $s;
}

sub read_file {
    my ($self, $f) = @_;
    my $p = File::Spec->file_name_is_absolute($f) ? $f : $self->path($f);
    open(my $fh, '<:raw', $p) or return undef;
    local $/;
    my $c = <$fh>;
    close $fh;
    return $c;
}

sub write_file {
    my ($self, $f, $content) = @_;
    my $p = File::Spec->file_name_is_absolute($f) ? $f : $self->path($f);
    open(my $fh, '>:raw', $p) or croak "$p: $!";
    # characters (a configuration with Japanese messages) as UTF-8
    utf8::encode($content) if utf8::is_utf8($content);
    print {$fh} $content;
    close $fh or croak "$p: $!";
    return $p;
}

sub stop {
    my ($self) = @_;
    return unless defined $OWNER && $$ == $OWNER;
    $self->reap('nginx', 'TERM', 10);
    $self->reap('backend', 'TERM', 5);
    $self->reap('redis', 'TERM', 5);
    for my $name (keys %{ $self->{procs} }) {
        $self->reap($name, 'TERM', 5);
    }
    $self->sanitizer_scan();
    return if $self->{is_node};
    if ($self->{dir} && -d $self->{dir} && !$ENV{ECODOC_KEEP}) {
        remove_tree($self->{dir});
    }
}

sub cleanup_all {
    return unless defined $OWNER && $$ == $OWNER;
    while (my $t = pop @INSTANCES) {
        eval { $t->stop() };
    }
}

my $handlers_installed;

sub install_signal_handlers {
    return if $handlers_installed++;
    for my $sig (qw(INT TERM HUP)) {
        $SIG{$sig} = sub {
            cleanup_all() if defined $OWNER && $$ == $OWNER;
            POSIX::_exit(128 + 1);
        };
    }
    $SIG{PIPE} = 'IGNORE';
}

END {
    my $reports = '';
    {
        local $?;
        cleanup_all();
        $reports = sanitizer_reports() if defined $SAN_PID && $$ == $SAN_PID;
    }
    if ($reports ne '') {
        diag("sanitizer reports (make test-asan): this test file fails\n"
            . $reports);
        $? = 1 unless $?;
    }
}

###############################################################################
# Redis

sub redis_start {
    my ($self, %o) = @_;
    my $rdir = $self->path('redis');
    mkdir $rdir unless -d $rdir;
    $self->{redis_sock} = $self->path('redis/redis.sock');
    $self->spawn('redis', $self->path('redis.log'),
        which('redis-server'),
        '--port', $self->{redis_port},
        '--bind', '127.0.0.1',
        '--unixsocket', $self->{redis_sock},
        '--unixsocketperm', '777',
        '--save', '',
        '--appendonly', 'no',
        '--dir', $rdir,
        '--dbfilename', 'dump.rdb',
        '--daemonize', 'no',
        '--protected-mode', 'no',
        @{ $o{args} || $self->{redis_args} || [] },
    );
    $self->{redis_args} = $o{args} if $o{args};
    my $deadline = time + 10;
    while (time < $deadline) {
        croak "redis-server exited:\n" . $self->logs('redis')
            unless $self->alive('redis');
        my $r = eval { $self->redis_cmd('PING') };
        return $self if defined $r && $r eq 'PONG';
        sleep 0.05;
    }
    croak "redis-server does not answer PING:\n" . $self->logs('redis');
}

# redis_stop(save => 1) writes dump.rdb first so that redis_start() comes
# back with the same data.
sub redis_stop {
    my ($self, %o) = @_;
    $self->redis_cmd('SAVE') if $o{save};
    $self->reap('redis', 'TERM', 10);
    return $self;
}

sub redis_running { $_[0]->alive('redis') }

# redis_calls(): { command => calls } from INFO commandstats: what clients
# sent, and for scripts also the calls made inside them (the scripts use
# GET, never GETEX). One tally of the commands a gate sends per request:
# gate_calls() = GETEX + EVALSHA + EVAL.
sub redis_calls {
    my ($self) = @_;
    my $info = $self->redis_cmd('INFO', 'commandstats') // '';
    return { $info =~ /^cmdstat_([\w|]+):calls=(\d+)/mg };
}

sub gate_calls {
    my ($self) = @_;
    my $n = $self->redis_calls;
    my $sum = 0;
    $sum += $n->{$_} // 0 for qw(getex evalsha eval);
    return $sum;
}

# a tiny RESP client: one connection per command. Returns a scalar for
# simple strings, integers and bulk strings, undef for nil, an array ref
# for arrays. A Redis error reply dies with "redis: ERR ...". With a Redis
# set (start(redis_set => ...)), to its master of the moment.
sub redis_cmd {
    my ($self, @args) = @_;
    return $self->{redis_set}->cmd($self->{redis_set}->master, @args)
        if $self->{redis_set};
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $self->{redis_port}, Proto => 'tcp', Timeout => 3)
        or die "redis: cannot connect to 127.0.0.1:$self->{redis_port}: $!\n";
    my @cmds = ([@args]);
    # set by a test that gives Redis a password (CONFIG SET requirepass)
    unshift @cmds, ['AUTH', $self->{redis_password}]
        if defined $self->{redis_password};
    return resp_exchange($s, @cmds);
}

# resp_exchange(SOCKET, [command], ...): sends the commands, reads every
# reply, closes the socket and returns the last reply
sub resp_exchange {
    my ($s, @cmds) = @_;
    my $req = '';
    for my $c (@cmds) {
        $req .= '*' . @$c . "\r\n";
        for my $a (@$c) {
            my $b = "$a";
            utf8::encode($b) if utf8::is_utf8($b);
            $req .= '$' . length($b) . "\r\n$b\r\n";
        }
    }
    print {$s} $req;
    local $SIG{ALRM} = sub { die "redis: timeout\n" };
    alarm 10;
    my $r = eval { resp_read($s) for 2 .. @cmds; resp_read($s) };
    my $err = $@;
    alarm 0;
    close $s;
    die $err if $err;
    return $r;
}

sub resp_read {
    my ($s) = @_;
    my $line = <$s>;
    die "redis: connection closed\n" unless defined $line;
    $line =~ s/\r\n\z//;
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+' || $t eq ':';
    die "redis: $v\n" if $t eq '-';
    if ($t eq '$') {
        return undef if $v < 0;
        my $buf = '';
        while (length($buf) < $v + 2) {
            my $n = read($s, $buf, $v + 2 - length($buf), length($buf));
            die "redis: short read\n" unless $n;
        }
        return substr($buf, 0, $v);
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [map { resp_read($s) } 1 .. $v];
    }
    die "redis: unexpected reply '$line'\n";
}

sub redis_hash {
    my ($self, $key) = @_;
    my $a = $self->redis_cmd('HGETALL', $key) || [];
    return {@$a};
}

# keys are given without the prefix
sub rkey { $_[0]{prefix} . $_[1] }

sub user_record {
    my ($self, $u) = @_;
    return $self->redis_hash($self->rkey("user:$u"));
}

sub failures {
    my ($self, $u) = @_;
    my $v = $self->redis_cmd('HGET', $self->rkey("user:$u"), 'failures');
    return defined $v ? $v : 0;
}

sub is_locked {
    my ($self, $u) = @_;
    my $v = $self->redis_cmd('HGET', $self->rkey("user:$u"), 'locked');
    return defined $v && $v eq '1' ? 1 : 0;
}

# audit records (oldest first) as hash refs with their stream id in {id}
sub audit {
    my ($self, %o) = @_;
    my $r = $self->redis_cmd('XRANGE', $self->rkey('audit'),
        defined $o{after} ? "($o{after}" : '-', '+') || [];
    return map { { id => $_->[0], @{ $_->[1] } } } @$r;
}

# the refusals counted per minute (lua/lib.lua): a list of
# { minute, who, event, count, and of the last: time, addr, user, detail },
# oldest first
sub refusals {
    my ($self) = @_;
    my @out;
    for my $m (@{ $self->redis_cmd('ZRANGE', $self->rkey('refused'), 0, -1)
                  || [] }) {
        my %h = @{ $self->redis_cmd('HGETALL', $self->rkey("refused:$m"))
                   || [] };
        for my $f (sort grep { !/ last\z/ } keys %h) {
            my ($who, $ev) = split / /, $f, 2;
            my ($time, $addr, $user, $detail) = split / /,
                $h{"$f last"} // '', 4;
            push @out, { minute => $m, who => $who, event => $ev,
                count => $h{$f}, time => $time, addr => $addr,
                user => $user, detail => $detail };
        }
    }
    return @out;
}

sub audit_last_id {
    my ($self) = @_;
    my $r = $self->redis_cmd('XREVRANGE', $self->rkey('audit'), '+', '-',
        'COUNT', 1) || [];
    return @$r ? $r->[0][0] : '0-0';
}

###############################################################################
# the CA, with the openssl CLI

sub openssl {
    my ($self, @args) = @_;
    my $log = $self->path('openssl.log');
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $log);
        open(STDERR, '>&', \*STDOUT);
        exec('openssl', @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    croak "openssl @args failed:\n" . ($self->read_file('openssl.log') || '')
        if $?;
}

sub make_ca {
    my ($self) = @_;
    return if $self->{ca_made}++;

    $self->write_file('ext.cnf', <<'EOF');
[ ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ redis ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

    for my $ca (['ca', '/O=Ecodoc Test/CN=Ecodoc Test CA'],
        ['other-ca', '/O=Somebody Else/CN=Unrelated CA'])
    {
        my ($name, $subj) = @$ca;
        $self->genkey("$name.key");
        $self->openssl('req', '-new', '-x509', '-key', $self->path("$name.key"),
            '-subj', $subj, '-days', 3, '-sha256',
            '-config', $self->path('ext.cnf'), '-extensions', 'ca',
            '-out', $self->path("$name.crt"));
    }

    $self->issue('server', subject => '/O=Ecodoc Test/CN=localhost',
        ext => 'server');
    # a client certificate from the unrelated CA
    $self->cert('other', ca => 'other-ca', cn => 'other');
}

sub genkey {
    my ($self, $file) = @_;
    $self->openssl('genpkey', '-algorithm', 'EC',
        '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', $self->path($file));
}

my $serial = 0;

sub issue {
    my ($self, $name, %o) = @_;
    my $ca = $o{ca} || 'ca';
    $self->genkey("$name.key");
    $self->openssl('req', '-new', '-key', $self->path("$name.key"),
        '-subj', $o{subject}, '-out', $self->path("$name.csr"));
    $self->openssl('x509', '-req', '-in', $self->path("$name.csr"),
        '-CA', $self->path("$ca.crt"), '-CAkey', $self->path("$ca.key"),
        '-set_serial', sprintf('0x%x%04x', $$, ++$serial),
        '-days', $o{days} // 2,
        '-sha256', '-extfile', $self->path('ext.cnf'),
        '-extensions', $o{ext} || 'client', '-out', $self->path("$name.crt"));
}

# cert($name, cn => CN (default $name), ca => 'ca'|'other-ca',
#      subject => '/full/subject', days => N (default 2; -1: expired
# since yesterday)) makes $name.crt/$name.key once and returns the name;
# fingerprint($name) gives its fingerprint.
sub cert {
    my ($self, $name, %o) = @_;
    croak "bad cert name '$name'" unless $name =~ /^[A-Za-z0-9._-]+\z/;
    return $name if $self->{certs}{$name};
    $self->make_ca() unless $self->{ca_made};
    my $cn = defined $o{cn} ? $o{cn} : $name;
    my $subject = defined $o{subject} ? $o{subject} : "/O=Ecodoc Test/CN=$cn";
    $self->issue($name, subject => $subject, ca => $o{ca} || 'ca',
        days => $o{days});
    $self->{certs}{$name} = 1;
    return $name;
}

# lower-case hex SHA-256 of the certificate's DER
sub fingerprint {
    my ($self, $name) = @_;
    my $pem = $self->read_file("$name.crt")
        or croak "no certificate '$name'";
    my ($b64) = $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----/s
        or croak "no PEM certificate in $name.crt";
    return sha256_hex(decode_base64($b64));
}

###############################################################################
# nginx

my @DEFAULT_DIRECTIVES = (
    [ecodoc_redis_prefix        => '"%%PREFIX%%"'],
    [ecodoc_redis_timeout       => '1s'],
    [ecodoc_thread_pool         => 'ecodoc'],
    [ecodoc_scrypt              => '12 8 1'],
    [ecodoc_password_min_length => '10'],
    [ecodoc_password_require    => '"[0-9]" "at least one digit"'],
    [ecodoc_max_failures        => '6'],
    [ecodoc_session_timeout     => '30m'],
    [ecodoc_session_lifetime    => '8h'],
);

sub write_nginx_conf {
    my ($self, %o) = @_;
    my $d = $self->{dir};

    my $main = '';
    unless ($self->{plain}) {
        $main .= "load_module $self->{module};\n";
        $main .= "thread_pool ecodoc threads=4;\n";
    }
    $main .= "user root root;\n" if $> == 0;
    $main .= $o{main} if defined $o{main};

    my $ecodoc_http = '';
    my $ecodoc_server = '';
    my $locations;
    unless ($self->{plain}) {
        my %ov = %{ $o{directives} || {} };
        my $redis = $o{redis_unix} ? "unix:$self->{redis_sock}"
            : "127.0.0.1:$self->{redis_port}";
        $redis = defined $o{redis_conf} ? $o{redis_conf}
            : "    ecodoc_redis $redis;\n";
        $ecodoc_http .= $redis;
        my @d = map {
            my ($n, $v) = @$_;
            exists $ov{$n} ? [$n, delete $ov{$n}] : [$n, $v]
        } @DEFAULT_DIRECTIVES;
        push @d, map { [$_, $ov{$_}] } sort keys %ov;
        for my $dv (@d) {
            my ($n, $v) = @$dv;
            next unless defined $v;
            $ecodoc_http .= "    $n $_;\n" for ref $v ? @$v : $v;
        }
        $ecodoc_server = "        ecodoc_signup_subject_match on;\n";
        $locations = <<'EOF';
        location / {
            ecodoc on;
            proxy_set_header X-Ecodoc-User $ecodoc_user;
            proxy_set_header X-Ecodoc-Cert-Fingerprint $ecodoc_cert_fingerprint;
            proxy_pass http://127.0.0.1:%%BACKEND_PORT%%;
        }
        location /ecodoc/ {
            ecodoc_pages;
        }
EOF
    } else {
        # no module: the same TLS setup, for checking the harness itself
        $locations = <<'EOF';
        location / {
            proxy_set_header X-Ecodoc-Verify $ssl_client_verify;
            proxy_pass http://127.0.0.1:%%BACKEND_PORT%%;
        }
        location /ecodoc/ {
            default_type text/html;
            add_header Set-Cookie "__Host-ecodoc=plain-token; Path=/; Secure; HttpOnly; SameSite=Strict";
            return 200 '<form method="post"><input type="hidden" name="csrf" value="plain&amp;token"></form>';
        }
EOF
    }
    $locations = $o{locations} if defined $o{locations};

    # HTTP/2 beside HTTP/1.1, chosen by ALPN: "http2 on" from 1.25.1,
    # where "listen ... http2" is deprecated, the listen parameter before
    my ($listen_http2, $http2) = ('', '');
    if ($self->has_module('http_v2')) {
        if ($self->nginx_at_least('1.25.1')) {
            $http2 = "        http2 on;\n";
        } else {
            $listen_http2 = ' http2';
        }
    }

    my $conf = <<'EOF';
%%MAIN%%
worker_processes %%WORKERS%%;
master_process on;
error_log %%NDIR%%/error.log info;

events {
    worker_connections 1024;
}

http {
    access_log %%NDIR%%/access.log;
    client_body_temp_path %%NDIR%%/client_body_temp;
    proxy_temp_path %%NDIR%%/proxy_temp;
    fastcgi_temp_path %%NDIR%%/fastcgi_temp;
    uwsgi_temp_path %%NDIR%%/uwsgi_temp;
    scgi_temp_path %%NDIR%%/scgi_temp;

%%ECODOC_HTTP%%
%%HTTP%%

    server {
        listen 127.0.0.1:%%PORT%% ssl%%LISTEN_HTTP2%%;
%%HTTP2%%        server_name localhost;

        ssl_certificate %%DIR%%/server.crt;
        ssl_certificate_key %%DIR%%/server.key;
        ssl_client_certificate %%DIR%%/ca.crt;
        ssl_verify_client optional;
        ssl_verify_depth 2;

%%ECODOC_SERVER%%
%%SERVER%%

%%LOCATIONS%%
    }
}
EOF
    my %sub = (
        MAIN          => $main,
        DIR           => $d,
        NDIR          => $self->ndir,
        ECODOC_HTTP   => $ecodoc_http,
        HTTP          => defined $o{http} ? $o{http} : '',
        ECODOC_SERVER => $ecodoc_server,
        SERVER        => defined $o{server} ? $o{server} : '',
        LOCATIONS     => $locations,
        LISTEN_HTTP2  => $listen_http2,
        HTTP2         => $http2,
        WORKERS       => $o{workers} || 1,
    );
    # twice: snippets may carry %%PORT%% etc. themselves
    for (1 .. 2) {
        $conf =~ s/%%(MAIN|DIR|NDIR|ECODOC_HTTP|HTTP|ECODOC_SERVER|SERVER|LOCATIONS|LISTEN_HTTP2|HTTP2|WORKERS)%%/$sub{$1}/g;
        $conf =~ s/%%PORT%%/$self->{port}/g;
        $conf =~ s/%%BACKEND_PORT%%/$self->{backend_port}/g;
        $conf =~ s/%%REDIS_PORT%%/$self->{redis_port}/g;
        $conf =~ s/%%PREFIX%%/$self->{prefix}/g;
    }
    $self->write_file($self->npath('nginx.conf'), $conf);
    return $conf;
}

sub nginx_start {
    my ($self) = @_;
    my $d = $self->ndir;
    $self->spawn('nginx', $self->npath('nginx.out'),
        $self->{nginx}, '-p', "$d/", '-c', "$d/nginx.conf",
        '-e', "$d/error.log", '-g', "daemon off; pid $d/nginx.pid;");
    $self->wait_port('nginx', $self->{port}, 15);
    return $self;
}

# node(%start_options): one more nginx with the module beside this one
# (started): the same CA and certificates, Redis (or Redis set), backend
# and start options unless given; its own port and files (DIR/node-N/).
# The returned object is a harness like this one, for that node.
sub node {
    my ($self, %o) = @_;
    my $nodes = $self->{nodes} ||= [];
    my $node = bless { %$self, procs => {}, is_node => 1,
        nodes => undef }, ref $self;
    $node->{ndir} = $self->path('node-' . (@$nodes + 2));
    mkdir $node->{ndir} or croak "$node->{ndir}: $!";
    ($node->{port}) = free_ports(1);
    $node->{conf_opts} = { %{ $self->{conf_opts} || {} }, %o };
    push @$nodes, $node;
    push @INSTANCES, $node;
    $node->write_nginx_conf(%{ $node->{conf_opts} });
    $node->nginx_start();
    return $node;
}

sub nginx_stop {
    my ($self) = @_;
    $self->reap('nginx', 'TERM', 10);
    return $self;
}

sub nginx_running { $_[0]->alive('nginx') }

# the pids of nginx's worker processes (the master's children)
sub nginx_workers {
    my ($self) = @_;
    my $master = $self->{procs}{nginx} or return;
    open(my $fh, '<', "/proc/$master/task/$master/children") or return;
    my $l = <$fh> // '';
    close $fh;
    return split ' ', $l;
}

# nginx_reload(%start_options): rewrites nginx.conf with those options
# (when given), sends HUP to the master and waits until every worker is a
# new one; returns their pids
sub nginx_reload {
    my ($self, %o) = @_;
    if (%o) {
        $self->{conf_opts} = { %{ $self->{conf_opts} || {} }, %o };
        $self->write_nginx_conf(%{ $self->{conf_opts} });
    }
    my $n = $self->{conf_opts}{workers} || 1;
    my %old = map { $_ => 1 } $self->nginx_workers;
    kill 'HUP', $self->{procs}{nginx} or croak 'nginx is not running';
    my $deadline = time + 15;
    while (time < $deadline) {
        my @w = $self->nginx_workers;
        return @w if @w == $n && !grep { $old{$_} } @w;
        sleep 0.05;
    }
    croak "nginx reload: the workers were not replaced:\n"
        . $self->logs('nginx');
}

sub error_log { $_[0]->read_file($_[0]->npath('error.log')) // '' }

# lines of error.log that tell of a crashed worker (not of one that a
# reload ended: "exited with code 0")
sub crashes {
    my ($self) = @_;
    return grep { /exited on signal|core dumped|worker process \d+ exited with code [1-9]/ }
        split /\n/, $self->error_log;
}

###############################################################################
# backend

sub backend_start {
    my ($self) = @_;
    my $script = "$ROOT/demo/backend.pl";
    croak "no backend at $script" unless -f $script;
    $self->write_file('backend.count', "0\n");
    $self->spawn('backend', $self->path('backend.log'), $^X, $script,
        $self->{backend_port}, $self->path('backend.count'));
    $self->wait_port('backend', $self->{backend_port}, 10);
    return $self;
}

sub backend_requests {
    my ($self) = @_;
    open(my $fh, '<', $self->path('backend.count')) or return 0;
    flock($fh, LOCK_SH);
    my $n = <$fh>;
    close $fh;
    return defined $n && $n =~ /^(\d+)/ ? $1 : 0;
}

###############################################################################
# ecodoc-ca

# ca_run(@args) -> { exit => N, out => STDOUT, err => STDERR }
sub ca_run {
    my ($self, @args) = @_;
    croak 'no ecodoc-ca in plain mode' unless $self->{ca_tool};
    my ($out, $err) = ($self->path('ca.out'), $self->path('ca.err'));
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', $out);
        open(STDERR, '>', $err);
        $ENV{ECODOC_REDIS_PASSWORD} = $self->{redis_password}
            if defined $self->{redis_password};
        exec($self->{ca_tool}, $self->ca_redis_args, '--prefix', $self->{prefix}, @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $st = $?;
    my $r = {
        exit   => $st & 127 ? 128 + ($st & 127) : $st >> 8,
        out    => $self->read_file($out) // '',
        err    => $self->read_file($err) // '',
    };
    sanitizer_note("ecodoc-ca @args: stderr", $r->{err});
    return $r;
}

# ecodoc-ca's Redis options: start()'s ca_redis, or the private Redis
sub ca_redis_args {
    my ($self) = @_;
    return @{ $self->{ca_redis} || ['--redis', "127.0.0.1:$self->{redis_port}"] };
}

# ca(@args) returns stdout and dies with stderr on a non-zero exit;
# ca({ ok => 1 }, @args) never dies and returns ca_run's hash.
sub ca {
    my ($self, @args) = @_;
    if (ref $args[0] eq 'HASH') {
        shift @args;
        return $self->ca_run(@args);
    }
    my $r = $self->ca_run(@args);
    croak "ecodoc-ca @args: exit $r->{exit}: $r->{err}" if $r->{exit};
    return $r->{out};
}

sub add_user {
    my ($self, $u, %o) = @_;
    my $out = $self->ca('user', 'add', $u, '--cost', $o{cost} || 12);
    my ($pw) = $out =~ /^initial password: (\S+)$/m
        or croak "ecodoc-ca user add $u: no initial password in:\n$out";
    return $pw;
}

# parsed "user show": { state => ..., failures => ..., ... }
sub user_show {
    my ($self, $u) = @_;
    my $out = $self->ca('user', 'show', $u);
    my %h;
    for (split /\n/, $out) {
        $h{$1} = $2 if /^([a-z][a-z ]*):\s*(.*?)\s*$/;
    }
    return \%h;
}

###############################################################################
# HTTPS client

# http(METHOD, PATH, cert => NAME|undef, headers => [N => V, ...],
#      body => BYTES, form => [k => v, ...], cookie => TOKEN|undef,
#      cookies => { name => value }, lang => 'en', origin => URL,
#      content_type => ..., raw => 'literal request', timeout => 10)
# -> { status, reason, headers => { lc name => [values] }, body, text, raw }
# status 0 and {error} when no HTTP answer came back.
# After use_http2(1), or with http2 => 1, it goes over HTTP/2 (http2()).
sub http {
    my ($self, $method, $path, %o) = @_;

    return $self->http2($method, $path, %o)
        if exists $o{http2} ? delete $o{http2} : $self->{use_http2};

    my %ssl = (
        PeerAddr        => '127.0.0.1',
        PeerPort        => $self->{port},
        Proto           => 'tcp',
        Timeout         => $o{timeout} || 10,
        SSL_hostname    => 'localhost',
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file     => $self->path('ca.crt'),
        SSL_verifycn_scheme => 'http',
        SSL_verifycn_name   => 'localhost',
    );
    if (defined $o{cert}) {
        $ssl{SSL_cert_file} = $self->path("$o{cert}.crt");
        $ssl{SSL_key_file}  = $self->path("$o{cert}.key");
        croak "no certificate '$o{cert}'" unless -f $ssl{SSL_cert_file};
    }

    my $req;
    if (defined $o{raw}) {
        $req = $o{raw};
    } else {
        my @h = ('Host' => "localhost:$self->{port}");
        my $body = $o{body};
        if ($o{form}) {
            $body = form_body(@{ $o{form} });
        }
        if (defined $body) {
            push @h, 'Content-Type' => exists $o{content_type}
                ? $o{content_type} : 'application/x-www-form-urlencoded'
                if !exists $o{content_type} || defined $o{content_type};
            push @h, 'Content-Length' => length $body;
        }
        push @h, request_headers(%o);
        push @h, 'Connection' => 'close';
        $req = "$method $path HTTP/1.1\r\n";
        while (my ($n, $v) = splice @h, 0, 2) {
            $req .= "$n: $v\r\n";
        }
        $req .= "\r\n";
        $req .= $body if defined $body;
    }
    utf8::encode($req) if utf8::is_utf8($req);

    my $s = IO::Socket::SSL->new(%ssl);
    unless ($s) {
        return { status => 0, headers => {}, body => '', text => '', raw => '',
            error => "connect: " . ($IO::Socket::SSL::SSL_ERROR || $!) };
    }

    my ($raw, $err) = exchange($s, $req, $o{timeout} || 10);
    close $s;

    my $r = parse_response($raw, $method);
    $r->{error} = $err if $err;
    return $r;
}

# use_http2(1): from now on http() and so every flow (signup, login, ...)
# speaks HTTP/2
sub use_http2 {
    my ($self, $on) = @_;
    $self->{use_http2} = $on ? 1 : 0;
    return $self;
}

# curl has HTTP/2 (Debian's does, through nghttp2)
my $CURL_H2;

sub curl_has_http2 {
    return $CURL_H2 //= do {
        my $curl = which('curl');
        my $v = '';
        if ($curl && open(my $fh, '-|', $curl, '-V')) {
            local $/;
            $v = <$fh> // '';
            close $fh;
        }
        $v =~ /^Features:.*\bHTTP2\b/m ? 1 : 0;
    };
}

# http2(METHOD, PATH, ...): http() over HTTP/2 with curl (--http2, ALPN),
# the same options but raw; chunked => 1 sends the body without a
# Content-Length (over HTTP/2 its end is the stream's). The response has
# {http_version} as curl saw it: '2' for HTTP/2.
# the headers http() and http2() send for lang, origin, cookies (the jar
# and the session cookie) and headers
sub request_headers {
    my (%o) = @_;
    my @h;
    push @h, 'Accept-Language' => $o{lang} if defined $o{lang};
    push @h, 'Origin' => $o{origin} if defined $o{origin};
    my %jar = %{ $o{cookies} || {} };
    $jar{$COOKIE} = $o{cookie} if defined $o{cookie};
    push @h, 'Cookie' => join('; ', map { "$_=$jar{$_}" } sort keys %jar)
        if %jar;
    push @h, @{ $o{headers} || [] };
    return @h;
}

# exchange($socket, $request, $timeout): writes the request (the server
# may answer and close early), reads until the server closes; the raw
# answer, an error ("timeout", ...) or undef, and when it was sent
sub exchange {
    my ($s, $req, $timeout) = @_;
    my ($raw, $err, $sent) = ('');
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm $timeout;
    eval {
        $sent = time;
        my $off = 0;
        while ($off < length $req) {
            my $n = syswrite($s, $req, length($req) - $off, $off);
            last unless $n;
            $off += $n;
        }
        while (1) {
            my $n = sysread($s, my $buf, 65536);
            last unless $n;
            $raw .= $buf;
        }
        1;
    } or $err = $@;
    alarm 0;
    return ($raw, $err, $sent);
}

sub http2 {
    my ($self, $method, $path, %o) = @_;
    croak 'http2: no raw requests' if defined $o{raw};
    my $curl = which('curl') or croak 'curl not found';

    my $f = $self->path("curl.$$");
    my @cmd = ($curl, '-q', '-sS', '--http2', '--noproxy', '*',
        '--max-time', $o{timeout} || 10,
        '--cacert', $self->path('ca.crt'),
        '--resolve', "localhost:$self->{port}:127.0.0.1",
        '-D', "$f.head", '-o', "$f.body", '-w', '%{http_version}',
        '-H', 'User-Agent:', '-H', 'Accept:');
    push @cmd, $method eq 'HEAD' ? '-I' : ('-X', $method);
    if (defined $o{cert}) {
        croak "no certificate '$o{cert}'"
            unless -f $self->path("$o{cert}.crt");
        push @cmd, '--cert', $self->path("$o{cert}.crt"),
            '--key', $self->path("$o{cert}.key");
    }

    my @h;
    my $body = $o{form} ? form_body(@{ $o{form} }) : $o{body};
    if (defined $body) {
        utf8::encode($body) if utf8::is_utf8($body);
        $self->write_file("curl.$$.req", $body);
        push @cmd, $o{chunked} ? ('-T', '-') : ('--data-binary', "\@$f.req");
        push @h, 'Content-Type' => exists $o{content_type}
            ? $o{content_type} // '' : 'application/x-www-form-urlencoded';
    }
    push @h, request_headers(%o);
    while (my ($n, $v) = splice @h, 0, 2) {
        my $line = "$n: $v";
        utf8::encode($line) if utf8::is_utf8($line);
        push @cmd, '-H', $line;
    }
    push @cmd, "https://localhost:$self->{port}$path";

    unlink "$f.head", "$f.body";
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', defined $body && $o{chunked} ? "$f.req" : '/dev/null');
        open(STDOUT, '>', "$f.out");
        open(STDERR, '>', "$f.err");
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $exit = $? >> 8;

    my $head = $self->read_file("$f.head") // '';
    my $raw_body = $self->read_file("$f.body") // '';
    my $version = $self->read_file("$f.out") // '';
    my $err = $self->read_file("$f.err") // '';
    unlink map { "$f.$_" } qw(head body out err req);

    # the last header block (after any 1xx)
    my @blocks = grep { /\S/ } split /\r\n\r\n/, $head;
    my $r = parse_response(@blocks ? "$blocks[-1]\r\n\r\n$raw_body" : '',
        $method);
    $r->{http_version} = $version;
    $r->{error} = "curl exit $exit: $err" if $exit;
    return $r;
}

sub parse_response {
    my ($raw, $method) = @_;
    my $r = { status => 0, headers => {}, body => '', text => '', raw => $raw };
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return $r unless defined $head
        && $head =~ m{^HTTP/\d(?:\.\d)? (\d{3})(?: ([^\r\n]*))?};
    @{$r}{qw(status reason)} = ($1, defined $2 ? $2 : '');
    my @lines = split /\r\n/, $head;
    shift @lines;
    for (@lines) {
        my ($n, $v) = /^([^:]+):[ \t]*(.*?)[ \t]*\z/ or next;
        push @{ $r->{headers}{lc $n} }, $v;
    }
    $body = '' unless defined $body;
    $body = '' if defined $method && $method eq 'HEAD';
    if ((hdr($r, 'transfer-encoding') || '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    $r->{body} = $body;
    $r->{text} = Encode::decode('UTF-8', $body);
    return $r;
}

###############################################################################
# response helpers (functions; exported on request)

# first value of a header (all values in list context)
sub hdr {
    my ($r, $name) = @_;
    my $v = $r->{headers}{lc $name} || [];
    return wantarray ? @$v : $v->[0];
}

sub html_unescape {
    my ($s) = @_;
    return undef unless defined $s;
    $s =~ s/&#x([0-9a-fA-F]+);/chr hex $1/ge;
    $s =~ s/&#(\d+);/chr $1/ge;
    $s =~ s/&quot;/"/g;
    $s =~ s/&apos;/'/g;
    $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g;
    $s =~ s/&amp;/&/g;
    return $s;
}

# the hidden csrf value of the (first) form in a page, or undef
sub form_token {
    my ($r) = @_;
    my $body = ref $r ? $r->{body} : $r;
    return undef unless defined $body;
    while ($body =~ /<input\b([^>]*)>/gis) {
        my $attrs = $1;
        next unless $attrs =~ /\bname\s*=\s*["']?csrf["'\s>\/]/i
            || $attrs =~ /\bname\s*=\s*csrf\b/i;
        return html_unescape($1) if $attrs =~ /\bvalue\s*=\s*"([^"]*)"/i;
        return html_unescape($1) if $attrs =~ /\bvalue\s*=\s*'([^']*)'/i;
        return $1 if $attrs =~ /\bvalue\s*=\s*([^\s"'>]+)/i;
    }
    return undef;
}

# { name => value } of the cookies a response sets (attributes dropped)
sub cookies {
    my ($r) = @_;
    my %c;
    for my $sc (hdr($r, 'set-cookie')) {
        my ($n, $v) = $sc =~ /^\s*([^=;\s]+)\s*=\s*([^;]*)/ or next;
        $c{$n} = $v;
    }
    return \%c;
}

# the __Host-ecodoc value a response sets (undef when it sets none)
sub cookie {
    my ($r) = @_;
    return cookies($r)->{$COOKIE};
}

# the Set-Cookie line for __Host-ecodoc (for checking its attributes)
sub set_cookie_line {
    my ($r) = @_;
    for my $sc (hdr($r, 'set-cookie')) {
        return $sc if $sc =~ /^\s*\Q$COOKIE\E=/;
    }
    return undef;
}

sub urlencode {
    my ($s) = @_;
    $s = '' unless defined $s;
    utf8::encode($s) if utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub form_body {
    my @kv = @_;
    my @p;
    while (my ($k, $v) = splice @kv, 0, 2) {
        push @p, urlencode($k) . '=' . urlencode($v);
    }
    return join '&', @p;
}

# Location as a path when it points at this server (relative, or absolute
# with our own origin); anything else is returned unchanged.
sub location_path {
    my ($self, $r) = @_;
    my $l = hdr($r, 'location');
    return undef unless defined $l;
    my $o = $self->origin;
    $l =~ s/^\Q$o\E(?=\/|\z)//i;
    $l =~ s{^https://localhost(?::443)?(?=/)}{}i if $self->{port} == 443;
    $l = '/' if $l eq '';
    return $l;
}

# a path on this server: starts with one '/', not '//' or '/\', no scheme,
# no control characters or spaces
sub is_local_path {
    my ($p) = @_;
    return 0 unless defined $p;
    return 0 unless $p =~ m{^/};
    return 0 if $p =~ m{^/[/\\]};
    return 0 if $p =~ /[\x00-\x20\x7f]/;
    return 1;
}

# the identity headers the backend page lists, as "Name: value" strings
sub identity_headers {
    my ($r) = @_;
    my ($pre) = ($r->{text} // '') =~ m{<pre id="identity-headers">(.*?)</pre>}s
        or return;
    return map { html_unescape($_) } grep { $_ ne '' } split /\n/, $pre;
}

# the user the backend says it saw (from X-Ecodoc-User), or undef
sub backend_user {
    my ($r) = @_;
    for (identity_headers($r)) {
        return $1 if /^x-ecodoc-user: (.*)\z/i;
    }
    return undef;
}

###############################################################################
# flows

# form($page, cert => ..., cookie => ..., fields => [k => v, ...],
#      csrf => TOKEN (given) | undef (omit the field), lang, origin,
#      headers, from => node) GETs the page for its csrf token (and any
#      cookies it sets), from another node's harness when given, then POSTs
#      the fields with the token. Returns the POST response (and the GET
#      response in list context).
sub form {
    my ($self, $page, %o) = @_;
    my %common = (
        cert    => $o{cert},
        lang    => $o{lang},
        headers => $o{headers},
    );
    # from => another node's harness: the form is fetched there
    my $src = $o{from} || $self;
    my $get = $src->http(GET => $page, %common, cookie => $o{cookie},
        cookies => $o{cookies});
    my $token = form_token($get);
    my %jar = (%{ $o{cookies} || {} }, %{ cookies($get) });
    if (!defined $token && $page ne '/ecodoc/login') {
        # a page that shows no form in this state (e.g. signup with a
        # bound certificate): take a token from the login form instead
        my $alt = $src->http(GET => '/ecodoc/login', %common,
            cookie => $o{cookie}, cookies => $o{cookies});
        $token = form_token($alt);
        %jar = (%jar, %{ cookies($alt) });
    }
    $jar{$COOKIE} = $o{cookie} if defined $o{cookie};
    delete $jar{$COOKIE} if defined $jar{$COOKIE}
        && ($jar{$COOKIE} eq '' || $jar{$COOKIE} eq 'deleted');
    my @fields = @{ $o{fields} || [] };
    if (exists $o{csrf}) {
        push @fields, csrf => $o{csrf} if defined $o{csrf};
    } else {
        push @fields, csrf => defined $token ? $token : '';
    }
    my $post = $self->http(POST => $page, %common, cookies => \%jar,
        form => \@fields, origin => $o{origin});
    $post->{csrf} = $token;
    return wantarray ? ($post, $get) : $post;
}

sub pages { '/ecodoc/' }

sub signup {
    my ($self, $cert, $user, $pw, %o) = @_;
    return $self->form('/ecodoc/signup', %o, cert => $cert,
        fields => [user => $user, password => $pw, @{ $o{fields} || [] }]);
}

sub login {
    my ($self, $cert, $user, $pw, %o) = @_;
    my @f = (user => $user, password => $pw);
    push @f, next => $o{next} if defined $o{next};
    return $self->form('/ecodoc/login', %o, cert => $cert,
        fields => [@f, @{ $o{fields} || [] }]);
}

sub change_password {
    my ($self, $cert, $cookie, $current, $new, $new2, %o) = @_;
    $new2 = $new unless defined $new2;
    return $self->form('/ecodoc/password', %o, cert => $cert,
        cookie => $cookie,
        fields => [current => $current, new => $new, new2 => $new2]);
}

sub logout {
    my ($self, $cert, $cookie, %o) = @_;
    return $self->form('/ecodoc/logout', %o, cert => $cert,
        cookie => $cookie, fields => []);
}

sub password_for { "Fresh-$_[1]-2024" }

# ready_user($u, cert => NAME (default $u), password => PW): adds U, makes
# the certificate, signs up, logs in with the initial password, changes
# it. Returns { user, cert, fp, initial, password, cookie } with a live
# session cookie. Dies (with the response) when a step does not answer
# as the contract says.
sub ready_user {
    my ($self, $u, %o) = @_;
    my $cert = $self->cert(defined $o{cert} ? $o{cert} : $u, cn => $u);
    my $initial = $self->add_user($u);
    my $pw = defined $o{password} ? $o{password} : $self->password_for($u);

    my $r = $self->signup($cert, $u, $initial);
    croak "ready_user $u: signup answered $r->{status}:\n$r->{raw}"
        unless $r->{status} == 200;
    $r = $self->login($cert, $u, $initial);
    croak "ready_user $u: login answered $r->{status}:\n$r->{raw}"
        unless $r->{status} == 303 && defined cookie($r);
    my $c = cookie($r);
    $r = $self->change_password($cert, $c, $initial, $pw);
    croak "ready_user $u: password change answered $r->{status}:\n$r->{raw}"
        unless $r->{status} == 200;
    $c = cookie($r) if defined cookie($r) && cookie($r) ne '';
    return {
        user     => $u,
        cert     => $cert,
        fp       => $self->fingerprint($cert),
        initial  => $initial,
        password => $pw,
        cookie   => $c,
    };
}

###############################################################################
# concurrency

# parallel($n, sub { my ($i, $ready) = @_; ...; $ready->(); ...; return STR })
# forks $n children. Each runs the sub; when it calls $ready->() it blocks
# until every child has called it (or died), so the part after it starts
# at the same moment in all of them. Returns the children's return values
# (strings; "ERROR: ..." if a child died), in order.
sub parallel {
    my ($self, $n, $code, %o) = @_;
    pipe(my $ready_r, my $ready_w) or croak "pipe: $!";
    pipe(my $go_r, my $go_w) or croak "pipe: $!";
    my @pids;
    for my $i (0 .. $n - 1) {
        my $pid = fork();
        croak "fork: $!" unless defined $pid;
        if ($pid == 0) {
            close $ready_r;
            close $go_w;
            my $signalled = 0;
            my $ready = sub {
                return if $signalled++;
                syswrite($ready_w, 'r');
                sysread($go_r, my $buf, 1);    # EOF when the parent says go
            };
            my $res = eval { $code->($i, $ready) };
            $res = "ERROR: $@" unless defined $res || !$@;
            $res = '' unless defined $res;
            $ready->() unless $signalled;
            $self->write_file("par.$$.$i", $res);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $ready_w;
    close $go_r;
    my $got = 0;
    local $SIG{ALRM} = sub { die "parallel: children not ready\n" };
    alarm($o{timeout} || 60);
    while ($got < $n) {
        my $k = sysread($ready_r, my $buf, $n - $got);
        last unless $k;
        $got += $k;
    }
    close $go_w;    # go
    waitpid($_, 0) for @pids;
    alarm 0;
    close $ready_r;
    my @res;
    for my $i (0 .. $#pids) {
        my $f = "par.$pids[$i].$i";
        my $v = $self->read_file($f);
        unlink $self->path($f);
        push @res, defined $v ? Encode::decode('UTF-8', $v) : 'ERROR: no result';
    }
    return @res;
}


###############################################################################
# the CA of ecodoc-ca and its enrollment server (t/ca_*.t, t/enroll*.t)

our $ENROLL_COOKIE = '__Host-enroll';

sub eca_dir { $_[0]->path('eca') }
sub enroll_sock { $_[0]->path('enroll.sock') }

# eca_init(@extra_init_args): before start(). Makes the harness CA, then a
# CA with `ecodoc-ca init --dir DIR/eca`, and appends its certificate to
# DIR/ca.crt so that nginx trusts clients of both and the client still
# trusts the server. Returns the init output.
sub eca_init {
    my ($self, @args) = @_;
    $self->make_ca();
    my $out = $self->ca('init', '--dir', $self->eca_dir,
        '--subject', '/O=Ecodoc Enroll Test/CN=Ecodoc Enroll Test CA', @args);
    my $both = $self->read_file('ca.crt') . $self->read_file('eca/ca.crt');
    $self->write_file('ca.crt', $both);
    return $out;
}

# eca(@args): ecodoc-ca with --dir DIR/eca (options may come anywhere;
# the user commands need no CA); eca({}, @args) never dies, like ca({}, ...)
sub eca {
    my ($self, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : undef;
    my @dir = $args[0] eq 'user' ? () : ('--dir', $self->eca_dir);
    return $self->ca($o ? ($o) : (), @args, @dir);
}

# the server{} text for start(server => ...): /enroll/ proxied to the
# enrollment server, the verified client certificate passed along
sub enroll_server_conf {
    my ($self) = @_;
    my $sock = $self->enroll_sock;
    return <<"EOT";
        location /enroll/ {
            proxy_pass http://unix:$sock:;
            proxy_set_header X-Ecodoc-Client-Cert \$ssl_client_escaped_cert;
            proxy_set_header X-Ecodoc-Client-Verify \$ssl_client_verify;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header Host \$http_host;
        }
EOT
}

# enroll_start(@extra_args): the enrollment server on DIR/enroll.sock
sub enroll_start {
    my ($self, @args) = @_;
    my $sock = $self->enroll_sock;
    $self->spawn('enroll', $self->path('enroll.log'), $self->{ca_tool},
        $self->ca_redis_args, '--prefix',
        $self->{prefix}, 'enroll-server', '--dir', $self->eca_dir,
        '--listen', "unix:$sock", '--site-url', $self->origin, @args);
    my $deadline = time + 10;
    while (time < $deadline) {
        croak "enroll-server exited:\n" . $self->logs('enroll')
            unless $self->alive('enroll');
        return $self if -S $sock;
        sleep 0.05;
    }
    croak "enroll-server does not listen on $sock:\n" . $self->logs('enroll');
}

sub enroll_stop {
    my ($self) = @_;
    $self->reap('enroll', 'TERM', 10);
    return $self;
}

sub enroll_running { $_[0]->alive('enroll') }

# the browser side of the enrollment site: GET or POST with a cookie jar
# (a hash ref, updated from Set-Cookie); POST takes the fields and adds
# csrf => $o{csrf} unless the fields have one.
sub enroll_get {
    my ($self, $path, $jar, %o) = @_;
    my $r = $self->http(GET => $path, %o, cookies => $jar);
    %$jar = (%$jar, %{ cookies($r) });
    return $r;
}

sub enroll_post {
    my ($self, $path, $jar, $fields, %o) = @_;
    my @f = @$fields;
    my %has = @f;
    push @f, csrf => $o{csrf} if !exists $has{csrf} && defined $o{csrf};
    delete $o{csrf};
    my $r = $self->http(POST => $path, %o, cookies => $jar, form => \@f);
    %$jar = (%$jar, %{ cookies($r) });
    return $r;
}

# enroll_step1($user, $code, %o) -> ($jar, $response): GET /enroll/ for
# the form, POST STEP1. On success the jar holds the session cookie.
sub enroll_step1 {
    my ($self, $user, $code, %o) = @_;
    my $jar = {};
    my $get = $self->enroll_get('/enroll/', $jar, lang => $o{lang});
    my $r = $self->enroll_post('/enroll/step1', $jar,
        [user => $user, password => $code], csrf => form_token($get),
        lang => $o{lang});
    return ($jar, $r);
}

# enroll($user, $code, key => 'ec'|'rsa2048'|..., csr => PEM (the CSR
# path; else PKCS#12), p12_password => PW, lang => 'en',
# stop_before_step3 => 1, jar => JAR (a session opened already, e.g. by a
# renewal: STEP1 is skipped)): STEP1-3.
# Returns { step1, step2, step3 => responses, jar, csrf }, and for the
# PKCS#12, after STEP3's 303, { issued => the page it leads to, p12 => the
# download that page starts }; stops at the first step that does not
# answer as a success.
sub enroll {
    my ($self, $user, $code, %o) = @_;
    my %res;
    my ($jar, $r) = $o{jar} ? ($o{jar}, { status => 303 })
        : $self->enroll_step1($user, $code, lang => $o{lang});
    @res{qw(jar step1)} = ($jar, $r);
    return \%res unless $r->{status} == 303;
    my $get = $self->enroll_get('/enroll/step2', $jar, lang => $o{lang});
    $res{csrf} = form_token($get);
    $r = $self->enroll_post('/enroll/step2', $jar,
        [key => $o{key} || 'ec'], csrf => $res{csrf}, lang => $o{lang});
    $res{step2} = $r;
    return \%res if $r->{status} != 303 || $o{stop_before_step3};
    my $pw = $o{p12_password} || 'p12-secret';
    my @f = defined $o{csr}
        ? (mode => 'csr', csr => $o{csr})
        : (mode => 'p12', p12pw => $pw, p12pw2 => $pw);
    $res{step3} = $self->enroll_post('/enroll/step3', $jar, \@f,
        csrf => $res{csrf}, lang => $o{lang});
    return \%res if defined $o{csr} || $res{step3}{status} != 303;
    $res{issued} = $self->enroll_get('/enroll/step3', $jar, lang => $o{lang});
    my ($to) = $res{issued}{body} =~ /http-equiv="refresh" content="0;url=([^"]+)"/;
    $res{p12} = $self->enroll_get($to // '/enroll/certificate.p12', $jar);
    return \%res;
}

# install_p12($name, $der, $password): $name.p12 into $name.crt/$name.key
# for http(cert => $name)
sub install_p12 {
    my ($self, $name, $der, $pw) = @_;
    $self->write_file("$name.p12", $der);
    $self->write_file("$name.pass", "$pw\n");
    for my $part (['crt', '-clcerts', '-nokeys'], ['key', '-nocerts']) {
        my ($ext, @what) = @$part;
        $self->openssl('pkcs12', '-in', $self->path("$name.p12"), @what,
            '-nodes', '-passin', 'file:' . $self->path("$name.pass"),
            '-out', $self->path("$name.$ext"));
    }
    $self->{certs}{$name} = 1;
    return $name;
}

# csr($name, type => 'ec'|'rsa1024'|'rsa2048'): a key $name.key and a CSR
# (whose subject the CA ignores); returns the CSR's PEM
sub csr {
    my ($self, $name, %o) = @_;
    my $type = $o{type} || 'ec';
    my @alg = $type =~ /^rsa(\d+)$/
        ? ('-algorithm', 'RSA', '-pkeyopt', "rsa_keygen_bits:$1")
        : ('-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256');
    $self->openssl('genpkey', @alg, '-out', $self->path("$name.key"));
    $self->openssl('req', '-new', '-key', $self->path("$name.key"),
        '-subj', $o{subject} || '/CN=somebody-else', '-out',
        $self->path("$name.csr"));
    return $self->read_file("$name.csr");
}

# `openssl @args` output (stdout and stderr), without dying
sub openssl_out {
    my ($self, @args) = @_;
    my $out = $self->path('openssl.out');
    my $pid = fork();
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', $out);
        open(STDERR, '>&', \*STDOUT);
        exec('openssl', @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    return $self->read_file('openssl.out') // '';
}

1;
