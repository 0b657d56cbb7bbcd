#!/usr/bin/perl

# `make demo`: the gateway on https://localhost:8443 with a demo CA, a demo
# user and the demo backend, and the curl lines that walk every step as a
# browser would.
#
#   ECODOC_MODULE=build/nginx/objs/ngx_http_ecodoc_module.so \
#   ECODOC_CA=build/ecodoc-ca perl demo/run.pl
#
# Environment: ECODOC_DEMO_PORT (default 8443; a free port is taken when
# it is in use), ECODOC_KEEP=1 keeps the temp dir.
#
# Everything (Redis, nginx, the backend, the certificates) lives in one
# temp dir and is stopped and removed on Ctrl-C, SIGTERM or SIGHUP, when
# the parent goes away, or when a server dies. It reuses the test
# harness (t/lib/Ecodoc/Test.pm) to start the servers and make the CA.

use strict;
use warnings;
use utf8;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Socket::IP;
use POSIX ();
use Time::HiRes qw(sleep);

use lib dirname(abs_path(__FILE__)) . '/../t/lib';
use Ecodoc::Test qw(hdr);

binmode STDOUT, ':encoding(UTF-8)';
binmode STDERR, ':encoding(UTF-8)';
$| = 1;

my $USER   = 'demo';
my $NEW_PW = 'Demo-new-passw0rd-2024';
my $PREFIX = 'ecodoc:';

my $t;          # the Ecodoc::Test instance once made
my $ppid = getppid();

sub say_ { print @_, "\n" }

sub stop_all {
    my ($why, $code) = @_;
    $SIG{$_} = 'IGNORE' for qw(INT TERM HUP);
    print STDERR "\necodoc demo: $why; stopping nginx, Redis and the backend\n";
    my $dir = $t ? $t->dir : undef;
    Ecodoc::Test::cleanup_all();
    print STDERR $dir && -d $dir ? "ecodoc demo: kept $dir\n"
        : $dir ? "ecodoc demo: removed $dir\n" : '';
    exit $code;
}

sub handle_signals {
    $SIG{$_} = sub { stop_all("got SIG$_[0]", 0) } for qw(INT TERM HUP);
    $SIG{PIPE} = 'IGNORE';
}
handle_signals();

###############################################################################
# prerequisites, with clear messages (the harness would skip a test instead)

my @missing;
for my $bin (qw(nginx redis-server openssl)) {
    push @missing, "$bin is not installed (make deps)"
        unless Ecodoc::Test::which($bin);
}
for ([ECODOC_MODULE => 'ngx_http_ecodoc_module.so', 'f'],
    [ECODOC_CA => 'the ecodoc-ca tool', 'x'])
{
    my ($var, $what, $test) = @$_;
    my $v = $ENV{$var};
    push @missing, !defined $v || $v eq '' ? "$var is not set ($what; run `make demo`)"
        : $test eq 'f' && !-f $v ? "$var=$v does not exist (run `make`)"
        : $test eq 'x' && !-x $v ? "$var=$v is not executable (run `make`)"
        : ();
}
if (@missing) {
    print STDERR "ecodoc demo: cannot start:\n", map { "  $_\n" } @missing;
    exit 1;
}

say_ 'ecodoc demo: starting Redis, nginx with ngx_ecodoc_module and the demo'
    . ' backend in a temp dir (Ctrl-C stops everything) ...';

###############################################################################
# the port

my $have_v6 = do {
    my $s = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
        Listen => 1);
    $s ? (close($s), 1) : 0;
};

sub port_free {
    my ($port) = @_;
    for my $addr ('127.0.0.1', $have_v6 ? '::1' : ()) {
        my $s = IO::Socket::IP->new(LocalHost => $addr, LocalPort => $port,
            Listen => 1, ReuseAddr => 1) or return 0;
        close $s;
    }
    return 1;
}

my $want = $ENV{ECODOC_DEMO_PORT} || 8443;
die "ecodoc demo: ECODOC_DEMO_PORT=$want is not a port number\n"
    unless $want =~ /^\d+\z/ && $want > 0 && $want < 65536;
my $port = $want;
unless (port_free($port)) {
    $port = undef;
    for (1 .. 20) {
        my ($p) = Ecodoc::Test::free_ports(1);
        if (port_free($p)) {
            $port = $p;
            last;
        }
    }
    die "ecodoc demo: port $want is in use and no free port was found\n"
        unless $port;
    say_ "  port $want is in use (by another program); using port $port instead";
}

###############################################################################
# start

my $ok = eval {
    $t = Ecodoc::Test->new(prefix => $PREFIX);
    handle_signals();      # after the harness has installed its own
    $t->{port} = $port;    # the harness picks a random one; the demo wants this one
    my $d = $t->dir;

    print '  demo CA and server certificate (openssl, ECDSA P-256) ... ';
    $t->make_ca();
    say_ 'ok';

    print '  Redis ... ';
    $t->redis_start();
    say_ '127.0.0.1:' . $t->redis_port;

    print "  demo user '$USER' (ecodoc-ca user add, scrypt at its default cost) ... ";
    my $out = $t->ca('user', 'add', $USER);
    my ($initial) = $out =~ /^initial password: (\S+)$/m
        or die "ecodoc-ca user add $USER printed no initial password:\n$out";
    say_ 'ok';

    print "  client certificate for '$USER' (CN=$USER, PEM and PKCS#12) ... ";
    $t->cert($USER, cn => $USER);
    my $p12pw = random_password(16);
    {
        local $ENV{ECODOC_DEMO_P12_PASS} = $p12pw;
        $t->openssl('pkcs12', '-export',
            '-in', $t->path("$USER.crt"), '-inkey', $t->path("$USER.key"),
            '-name', "ecodoc $USER", '-keypbe', 'AES-256-CBC',
            '-certpbe', 'AES-256-CBC', '-macalg', 'sha256',
            '-passout', 'env:ECODOC_DEMO_P12_PASS',
            '-out', $t->path("$USER.p12"));
    }
    chmod 0600, $t->path("$USER.key"), $t->path("$USER.p12");
    say_ 'ok';

    print '  demo backend (demo/backend.pl) ... ';
    $t->backend_start();
    say_ '127.0.0.1:' . $t->backend_port;

    print '  nginx ... ';
    $t->write_nginx_conf(
        server => $have_v6 ? "        listen [::1]:%%PORT%% ssl;\n" : '',
        directives => {
            # production values: the module's defaults
            ecodoc_scrypt              => undef,    # 17 8 1
            ecodoc_password_min_length => undef,    # 12
        },
    );
    $t->nginx_start();

    # the whole chain answers: nginx, the module, its Redis connection
    my $r;
    for (1 .. 50) {
        $r = $t->http(GET => '/', cert => $USER);
        last if $r->{status} == 303;
        sleep 0.1;
    }
    my $loc = hdr($r, 'location') // '';
    die "GET / with the demo certificate answered "
        . ($r->{status} || ($r->{error} // 'nothing'))
        . " $loc, not 303 to the sign-up page\n" . $t->logs('nginx')
        unless $r->{status} == 303 && $loc =~ m{/ecodoc/signup\z};
    say_ "https://localhost:$port/";

    print_instructions($d, $initial, $p12pw);
    1;
};
unless ($ok) {
    my $err = $@ || 'unknown error';
    $err =~ s/\s+\z//;
    $err =~ s/ at \S+ line \d+\.\z//;    # where the harness croaked
    print STDERR "\necodoc demo: FAILED: $err\n";
    stop_all('start-up failed', 1);
}

###############################################################################
# wait: for a signal, a dead server or a dead parent

while (1) {
    sleep 0.5;
    for my $name (qw(nginx redis backend)) {
        next if $t->alive($name);
        print STDERR "\necodoc demo: $name stopped unexpectedly:\n"
            . $t->logs($name);
        stop_all("$name died", 1);
    }
    stop_all('the parent process went away', 0) if getppid() != $ppid;
}

###############################################################################

sub random_password {
    my ($n) = @_;
    my @a = split //,
        'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
    open(my $fh, '<:raw', '/dev/urandom') or die "/dev/urandom: $!";
    my $s = '';
    while (length $s < $n) {
        read($fh, my $b, 1) == 1 or die "/dev/urandom: short read";
        my $v = ord $b;
        next if $v >= 256 - 256 % @a;
        $s .= $a[$v % @a];
    }
    close $fh;
    return $s;
}

sub print_instructions {
    my ($d, $initial, $p12pw) = @_;
    my $url  = "https://localhost:$port";
    my $c    = 'curl -sS --cacert ca.crt --cert demo.crt --key demo.key';
    my $tok  = q{sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p'};
    my $text = q{sed -e 's/<[^>]*>//g' -e '/^[[:space:]]*$/d'};
    my $ca   = abs_path($ENV{ECODOC_CA});
    my $rp   = $t->redis_port;

    print <<"EOF";

ecodoc demo is running

  URL               $url/
  user ID           $USER
  initial password  $initial
  CA certificate    $d/ca.crt
  client cert/key   $d/$USER.crt  $d/$USER.key
  PKCS#12           $d/$USER.p12  (password: $p12pw)
  administration    $ca --redis 127.0.0.1:$rp --prefix $PREFIX user show $USER

In a browser: import $USER.p12 as your certificate, trust ca.crt for
websites, open $url/.

With curl, as a browser would (paste line by line into a shell):

cd $d

# 1. GET /: the certificate is not signed up yet -> 303 to the sign-up page
$c -o /dev/null -D - $url/

# 2. sign-up: GET the form and keep its csrf token, then POST user ID + initial password
#    -> 200 "サインアップが完了しました。"
CSRF=\$($c $url/ecodoc/signup | $tok); echo "csrf=\$CSRF"
$c -D - -d user=$USER -d 'password=$initial' -d "csrf=\$CSRF" $url/ecodoc/signup | grep -a -e '^HTTP/' -e 'サインアップが完了しました'

# 3. log in (cookie jar: -c jar -b jar) -> 303 to /ecodoc/password (the initial password must be changed)
CSRF=\$($c -c jar -b jar $url/ecodoc/login | $tok); echo "csrf=\$CSRF"
$c -c jar -b jar -o /dev/null -D - -d user=$USER -d 'password=$initial' -d "csrf=\$CSRF" $url/ecodoc/login

# 4. GET / now: still only the password page -> 303 to /ecodoc/password
$c -c jar -b jar -o /dev/null -D - $url/

# 5. change the initial password -> 200 "パスワードを変更しました。" (the cookie is rotated)
CSRF=\$($c -c jar -b jar $url/ecodoc/password | $tok); echo "csrf=\$CSRF"
$c -c jar -b jar -D - -d 'current=$initial' -d 'new=$NEW_PW' -d 'new2=$NEW_PW' -d "csrf=\$CSRF" $url/ecodoc/password | grep -a -e '^HTTP/' -e 'パスワードを変更しました'

# 6. GET /: the backend's サービス TOP page and the identity headers it received
#    (the X-Ecodoc-User a client sends is dropped; nginx sets the real one)
$c -c jar -b jar -D - -H 'X-Ecodoc-User: mallory' $url/ | $text

# 7. log out -> 200 "ログアウトしました。"; GET / is then sent to the login page again
CSRF=\$($c -c jar -b jar $url/ecodoc/logout | $tok); echo "csrf=\$CSRF"
$c -c jar -b jar -D - -d "csrf=\$CSRF" $url/ecodoc/logout | grep -a -e '^HTTP/' -e 'ログアウトしました'
$c -c jar -b jar -o /dev/null -D - $url/

(Forms refuse an Origin header other than $url; curl sends none,
which is allowed. The new password is now $NEW_PW.)

Ctrl-C stops nginx, Redis and the backend and removes $d.
EOF
}
