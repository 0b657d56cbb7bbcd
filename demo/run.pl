#!/usr/bin/perl

# `make demo`: the whole service on https://localhost:8443 as the manual
# walks it: a CA made with `ecodoc-ca init`, a demo user added with
# `ecodoc-ca user add` (its registration notice, certificate password and
# initial password), the enrollment site (`ecodoc-ca enroll-server`) and
# the demo backend behind the same nginx, and the curl lines that walk
# STEP1-4, the sign-up, the login, the password change and the service
# with the certificate the enrollment site issued, as a browser would.
# The same lines are in walkthrough.sh in the demo's directory.
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

use Encode ();
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

say_ 'ecodoc demo: starting Redis, nginx with ngx_ecodoc_module, the'
    . ' enrollment site and the demo backend in a temp dir (Ctrl-C stops'
    . ' everything) ...';

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

    print "  the clients' CA (ecodoc-ca init) and a server certificate "
        . '(openssl) ... ';
    $t->eca_init('--org', 'Ecodoc Demo');
    say_ $t->eca_dir;

    print '  Redis ... ';
    $t->redis_start();
    say_ '127.0.0.1:' . $t->redis_port;

    print "  demo user '$USER' (ecodoc-ca user add, scrypt at its default "
        . 'cost) ... ';
    my $out = $t->eca('user', 'add', $USER,
        '--enroll-url', "https://localhost:$port/enroll/",
        '--site-url', "https://localhost:$port/");
    my ($initial) = $out =~ /^initial password: (\S+)$/m
        or die "ecodoc-ca user add $USER printed no initial password:\n$out";
    my ($code) = $out =~ /^certificate password: (\S+)$/m
        or die "ecodoc-ca user add $USER printed no certificate password:"
            . "\n$out";
    my ($notice) = $out =~ /^--- notice ---\n(.*)\z/ms;
    say_ 'ok';

    print '  the enrollment site (ecodoc-ca enroll-server) ... ';
    $t->enroll_start();
    say_ $t->enroll_sock;

    print '  demo backend (demo/backend.pl) ... ';
    $t->backend_start();
    say_ '127.0.0.1:' . $t->backend_port;

    print '  nginx ... ';
    $t->write_nginx_conf(
        server => ($have_v6 ? "        listen [::1]:%%PORT%% ssl;\n" : '')
            . $t->enroll_server_conf,
        directives => {
            # production values: the module's defaults
            ecodoc_scrypt              => undef,    # 17 8 1
            ecodoc_password_min_length => undef,    # 12
        },
    );
    $t->nginx_start();

    # the whole chain answers: nginx, the enrollment site, the module (a
    # browser without a certificate is refused)
    my ($r, $g);
    for (1 .. 50) {
        $r = $t->http(GET => '/enroll/');
        $g = $t->http(GET => '/');
        last if $r->{status} == 200 && $g->{status} == 403;
        sleep 0.1;
    }
    die "GET /enroll/ answered " . ($r->{status} || ($r->{error} // 'nothing'))
        . " and GET / without a certificate " . ($g->{status} || 'nothing')
        . ", not 200 and 403\n" . $t->logs('nginx') . $t->logs('enroll')
        unless $r->{status} == 200 && $g->{status} == 403;
    say_ "https://localhost:$port/";

    print_instructions($d, $initial, $code, $notice);
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
    for my $name (qw(nginx redis backend enroll)) {
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
    my ($d, $initial, $code, $notice) = @_;
    my $url   = "https://localhost:$port";
    my $c     = 'curl -sS --cacert ca.crt --cert demo.crt --key demo.key';
    my $e     = 'curl -sS --cacert ca.crt -c enroll.jar -b enroll.jar';
    my $tok   = q{sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1};
    my $text  = q{sed -e '/<style/,/<\/style>/d' -e 's/<[^>]*>//g' -e '/^[[:space:]]*$/d'};
    my $head  = q{grep -a -i -e '^HTTP/' -e '^location'};
    my $ca    = abs_path($ENV{ECODOC_CA});
    my $rp    = $t->redis_port;
    my $p12pw = random_password(16);

    my $walk = <<"EOF";
cd $d

# STEP1 (証明書発行サイト): the user ID and the certificate password of the
# notice -> 303 to STEP2; the enrollment session is in the cookie jar
CSRF=\$($e $url/enroll/ | $tok)
$e -o /dev/null -D - -d user=$USER -d 'password=$code' -d "csrf=\$CSRF" $url/enroll/step1 | $head

# STEP2: the key, ECDSA P-256 (ec; or rsa2048, rsa3072, rsa4096) -> 303 to STEP3
CSRF=\$($e $url/enroll/step2 | $tok)
$e -o /dev/null -D - -d key=ec -d "csrf=\$CSRF" $url/enroll/step2 | $head

# STEP3: a password for the PKCS#12 file; the site makes the key and the
# certificate, the browser downloads demo.p12 (the certificate password is
# now used up); then what a browser would import, as PEM for curl
CSRF=\$($e $url/enroll/step3 | $tok)
$e -o /dev/null -D - -d mode=p12 -d 'p12pw=$p12pw' -d 'p12pw2=$p12pw' -d "csrf=\$CSRF" $url/enroll/step3 | $head
#   (303 to the page that says the certificate is issued and starts the download)
$e -o demo.p12 -D - $url/enroll/certificate.p12 | grep -a -i -e '^HTTP/' -e '^content-disposition'
openssl pkcs12 -in demo.p12 -passin 'pass:$p12pw' -clcerts -nokeys -out demo.crt
openssl pkcs12 -in demo.p12 -passin 'pass:$p12pw' -nocerts -nodes -out demo.key
#   (or with a key of your own: openssl req -new -newkey ec -pkeyopt
#   ec_paramgen_curve:P-256 -nodes -keyout demo.key -subj /CN=$USER -out demo.csr;
#   POST -d mode=csr --data-urlencode csr\@demo.csr with the csrf instead of the
#   p12pw fields, then $e -o demo.crt $url/enroll/certificate.pem)

# STEP4: the browser presents the certificate: its subject, serial,
# fingerprint, expiry and days left
$c $url/enroll/step4 | $text | grep -a -A1 -e サブジェクト -e シリアル -e フィンガープリント -e 有効期限 -e 残り日数

# GET /: the certificate is not signed up yet -> 303 to the sign-up page
$c -o /dev/null -D - $url/ | $head

# sign-up: user ID + initial password -> 200 "サインアップが完了しました。"
CSRF=\$($c $url/ecodoc/signup | $tok)
$c -D - -d user=$USER -d 'password=$initial' -d "csrf=\$CSRF" $url/ecodoc/signup | grep -a -e '^HTTP/' -e 'サインアップが完了しました'

# log in (cookie jar) -> 303 to /ecodoc/password: the initial password must be changed
CSRF=\$($c -c jar -b jar $url/ecodoc/login | $tok)
$c -c jar -b jar -o /dev/null -D - -d user=$USER -d 'password=$initial' -d "csrf=\$CSRF" $url/ecodoc/login | $head

# GET / now: still only the password page -> 303 to /ecodoc/password
$c -c jar -b jar -o /dev/null -D - $url/ | $head

# change the initial password -> 200 "パスワードを変更しました。" (the cookie is rotated)
CSRF=\$($c -c jar -b jar $url/ecodoc/password | $tok)
$c -c jar -b jar -D - -d 'current=$initial' -d 'new=$NEW_PW' -d 'new2=$NEW_PW' -d "csrf=\$CSRF" $url/ecodoc/password | grep -a -e '^HTTP/' -e 'パスワードを変更しました'

# GET /: the backend's サービス TOP page and the identity headers it received
# (the X-Ecodoc-User a client sends is dropped; nginx sets the real one)
$c -c jar -b jar -D - -H 'X-Ecodoc-User: mallory' $url/ | $text

# log out -> 200 "ログアウトしました。"; GET / is then sent to the login page again
CSRF=\$($c -c jar -b jar $url/ecodoc/logout | $tok)
$c -c jar -b jar -D - -d "csrf=\$CSRF" $url/ecodoc/logout | grep -a -e '^HTTP/' -e 'ログアウトしました'
$c -c jar -b jar -o /dev/null -D - $url/ | $head
EOF

    $t->write_file('walkthrough.sh', Encode::encode('UTF-8', $walk));
    $notice = defined $notice ? Encode::decode('UTF-8', $notice) : "(none)\n";
    $notice =~ s/^/  | /mg;

    print <<"EOF";

ecodoc demo is running

  URL                   $url/
  enrollment site       $url/enroll/
  user ID               $USER
  certificate password  $code   (認証情報パスワード: STEP1, one issuance)
  initial password      $initial   (サインアップ・ログイン初期パスワード)
  CA certificate        $d/ca.crt   (the clients' CA: $d/eca/ca.crt)
  administration        $ca --redis 127.0.0.1:$rp --prefix $PREFIX user show $USER

The registration notice `ecodoc-ca user add` printed for the user (the
two passwords above go to the user separately):
$notice
In a browser: trust ca.crt for websites, open $url/enroll/ and follow
STEP1-4 with the certificate password, install the PKCS#12 it gives you,
then open $url/ and sign up with the initial password.

With curl, as a browser would (paste line by line into a shell, or run
bash $d/walkthrough.sh):

$walk
(Forms refuse an Origin header other than $url; curl sends none,
which is allowed. The new password is now $NEW_PW.)

Ctrl-C stops nginx, Redis, the enrollment site and the backend and
removes $d.
EOF
}
