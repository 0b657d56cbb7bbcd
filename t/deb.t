#!/usr/bin/perl

# The Debian packages of `make deb` (packaging/debian/, README "Debian
# packages").
#
# Wherever ECODOC_CA is set (make test): the man page names every command
# and every option that `ecodoc-ca --help` names.
#
# With ECODOC_DEB_DIR (make test-deb), as root on Debian with Debian's
# nginx, the packages are installed on this machine: apt-get installs
# both; nginx -t loads the module through the packaged snippet, in the
# system's nginx.conf; systemd-analyze verify accepts the unit; the unit's
# command line, user and group serve the enrollment site on a socket
# that www-data may open and nobody else, with the CA out of www-data's
# reach; a purge keeps a CA (and its user); with the CA gone, a purge
# leaves nothing behind. The packages are purged at the end whatever
# happened (END), leaving the machine as it was.

use strict;
use warnings;

use FindBin;
use File::Temp qw(tempdir);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use POSIX qw(WNOHANG);
use Test::More;

my $MOD      = 'libnginx-mod-http-ecodoc';
my $CA       = 'ecodoc-ca';
my $USER     = '_ecodoc';
my $SO       = '/usr/lib/nginx/modules/ngx_http_ecodoc_module.so';
my $SNIPPET  = '/usr/share/nginx/modules-available/mod-http-ecodoc.conf';
my $ENABLED  = '/etc/nginx/modules-enabled/50-mod-http-ecodoc.conf';
my $UNIT     = '/lib/systemd/system/ecodoc-enroll.service';
my $DEFAULTS = '/etc/default/ecodoc-enroll';
my $STATE    = '/var/lib/ecodoc';
my $RUN      = '/run/ecodoc';
my $NGINX    = '/usr/sbin/nginx';

my $src_man = "$FindBin::Bin/../packaging/debian/ecodoc-ca.1";

$ENV{DEBIAN_FRONTEND} = 'noninteractive';

sub q_ { my $s = shift; $s =~ s/'/'\\''/g; return "'$s'" }

# a command's exit code and its output (stdout and stderr)
sub run {
    my $out = `@{[ join(' ', map { q_($_) } @_) ]} 2>&1`;
    return ($? >> 8, $out);
}

sub installed {
    my ($pkg) = @_;
    my ($rc, $s) = run('dpkg-query', '-W', '-f=${db:Status-Abbrev}', $pkg);
    return $rc == 0 && $s =~ /^.[ic]/;
}

sub has_user  { scalar getpwnam($_[0]) }
sub has_group { scalar getgrnam($_[0]) }


# ---- the man page and --help ------------------------------------------

# the man page's source, its font and hyphen escapes read as text
sub man_text {
    my ($file) = @_;
    my $t;
    if ($file =~ /\.gz$/) {
        gunzip($file => \$t) or die "$file: $GunzipError";
    } else {
        open(my $f, '<', $file) or die "$file: $!";
        local $/;
        $t = <$f>;
    }
    $t =~ s/\\f[BIRP]//g;
    $t =~ s/\\-/-/g;
    return $t;
}

sub help_in_man {
    my ($bin, $man, $what) = @_;

    my ($rc, $help) = run($bin, '--help');
    is($rc, 0, "$what: ecodoc-ca --help") or diag($help);

    my ($list) = $help =~ /^commands:\n(.*?)\n\n/ms;
    my %seen;
    my @cmds = grep { !$seen{$_}++ }
               map { /^  (user [a-z-]+|[a-z][a-z-]*)/ ? $1 : () }
               split(/\n/, $list // '');
    my %opts = map { $_ => 1 } $help =~ /(?<![\w-])(--[a-z0-9][a-z0-9-]*)/g;

    my $text = man_text($man);

    my @missing = grep { $text !~ /^\.BI? "?\Q$_\E(?![\w-])/m } @cmds;
    ok(@cmds >= 10 && !@missing, "$what: the man page describes each of the "
       . @cmds . " commands of --help") or diag("missing: @missing");

    @missing = grep { $text !~ /(?<![\w-])\Q$_\E(?![\w-])/ } sort keys %opts;
    ok(keys(%opts) >= 20 && !@missing, '... and each of its '
       . keys(%opts) . ' options') or diag("missing: @missing");
}


# ---- may the packages be installed here? --------------------------------

my $deb_dir = $ENV{ECODOC_DEB_DIR};
my @debs;

sub why_not {
    return 'ECODOC_DEB_DIR is not set: `make test-deb` builds the packages '
        . 'and installs them here' unless defined $deb_dir;

    for my $p ($MOD, $CA) {
        my @f = glob("$deb_dir/${p}_*.deb");
        return "no ${p}_*.deb in $deb_dir (make deb)" unless @f == 1;
        push @debs, $f[0] =~ m{^/} ? $f[0] : "./$f[0]";
    }

    return 'installing packages needs root' unless $> == 0;
    return 'Debian only' unless -f '/etc/debian_version' && -x '/usr/bin/apt-get';
    return "Debian's nginx only (ECODOC_NGINX is $ENV{ECODOC_NGINX})"
        if ($ENV{ECODOC_NGINX} // $NGINX) ne $NGINX;
    return "Debian's nginx is not installed (make deps)"
        unless -x $NGINX && installed('nginx');

    for my $p ($MOD, $CA) {
        return "$p is installed already: this test would purge it"
            if installed($p);
    }
    for my $f ($STATE, $RUN, $ENABLED) {
        return "$f exists already" if -e $f || -l $f;
    }
    return "the user $USER exists already" if has_user($USER);

    return undef;
}

my $why = why_not();

plan skip_all => $why if defined $why && !$ENV{ECODOC_CA};

if ($ENV{ECODOC_CA}) {
    help_in_man($ENV{ECODOC_CA}, $src_man, 'the source tree');
}

if (defined $why) {
    SKIP: { skip($why, 1) }
    done_testing();
    exit 0;
}


# ---- installing, and leaving the machine as it was -----------------------

my (%new, $server, $made_ca, $made_run);

my $dir = tempdir('ecodoc-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod(0755, $dir);

my @apt = ('apt-get', '-y', '-q', '-o', 'DPkg::Lock::Timeout=300');

sub apt_install {
    my ($rc, $out) = run(@apt, 'install', @debs);

    # what apt pulled in besides the two, to purge them as well
    if ($out =~ /^The following NEW packages will be installed:\n((?:  .*\n)+)/m) {
        $new{$_} = 1 for grep { $_ ne $MOD && $_ ne $CA } split(' ', $1);
    }
    return ($rc, $out);
}

sub purge {
    my @p = grep { installed($_) } ($MOD, $CA, sort keys %new);
    return (0, '') unless @p;
    return run(@apt, 'purge', @p);
}

sub stop_server {
    return unless $server;
    kill('TERM', $server);
    for (1 .. 50) {
        last if waitpid($server, WNOHANG) == $server;
        select(undef, undef, undef, 0.1);
    }
    kill('KILL', $server) if kill(0, $server);
    waitpid($server, 0);
    undef $server;
}

# the CA this test made, and its user, as an administrator removes them
sub remove_ca {
    run('rm', '-rf', $STATE);
    run('deluser', '--system', '--quiet', $USER) if has_user($USER);
    run('delgroup', '--system', '--quiet', $USER) if has_group($USER);
}

END {
    local $?;
    stop_server();
    run('rm', '-rf', $RUN) if $made_run;
    if (installed($MOD) || installed($CA) || grep { installed($_) } keys %new) {
        diag('purging what the test installed');
        my ($rc, $out) = purge();
        diag($out) if $rc != 0;
    }
    remove_ca() if $made_ca;
}

$SIG{INT} = $SIG{TERM} = sub { exit 1 };

my @enabled_before = sort glob('/etc/nginx/modules-enabled/*');

# a configuration that can pass nginx -t only with this module loaded,
# and loads it only through the snippets of modules-enabled/
my $probe = "$dir/probe.conf";
open(my $pf, '>', $probe) or die "$probe: $!";
print {$pf} <<'EOF';
include /etc/nginx/modules-enabled/*.conf;
thread_pool ecodoc threads=1;
events { }
http {
    access_log off;
    ecodoc_redis 127.0.0.1:6379;
    ecodoc_thread_pool ecodoc;
}
EOF
close $pf;

my ($rc, $out) = run($NGINX, '-t', '-c', $probe);
like($out, qr/unknown directive "ecodoc_redis"/,
     'before: no ecodoc_redis in nginx');

($rc, $out) = apt_install();
is($rc, 0, 'apt-get install ' . join(' ', @debs)) or diag($out);
ok(installed($MOD) && installed($CA), '... both packages are installed');


# ---- the module ----------------------------------------------------------

my ($abi) = `dpkg-query -W -f='\${Provides}' nginx` =~ /(nginx-abi-[\w.+~-]+)/;
($rc, $out) = run('dpkg-query', '-W', '-f=${Depends}', $MOD);
like($out, qr/(?:^|, )\Q$abi\E(?:,|$)/,
     "$MOD depends on $abi, the ABI Debian's nginx provides");
like($out, qr/libhiredis0\.14/, '... on libhiredis0.14');
like($out, qr/libssl3/, '... and on libssl3');

ok(-f $SO, "the module: $SO");
($rc, $out) = run('cat', $SNIPPET);
is($out, "load_module modules/ngx_http_ecodoc_module.so;\n",
   "its snippet: $SNIPPET");
is(readlink($ENABLED), $SNIPPET, "enabled: $ENABLED -> the snippet");

($rc, $out) = run($NGINX, '-t');
is($rc, 0, 'nginx -t with the system\'s /etc/nginx/nginx.conf') or diag($out);
unlike($out, qr/\[(?:warn|emerg)\]/, '... with no warning') or diag($out);

($rc, $out) = run($NGINX, '-T');
like($out, qr{^# configuration file \Q$ENABLED\E:\nload_module modules/ngx_http_ecodoc_module\.so;$}m,
     'nginx -T: the module is loaded by the packaged snippet');

($rc, $out) = run($NGINX, '-t', '-c', $probe);
is($rc, 0, 'the module\'s directives work, loaded by modules-enabled/')
    or diag($out);


# ---- ecodoc-ca -----------------------------------------------------------

($rc, $out) = run('/usr/bin/ecodoc-ca', '--help');
ok($rc == 0 && $out =~ /^usage: ecodoc-ca/, 'ecodoc-ca --help');

($rc, $out) = run('man', '-w', 'ecodoc-ca');
is($out, "/usr/share/man/man1/ecodoc-ca.1.gz\n", 'man -w ecodoc-ca');
$out = `man --warnings -E UTF-8 -l -Tutf8 -Z /usr/share/man/man1/ecodoc-ca.1.gz 2>&1 > /dev/null`;
ok($? == 0 && $out eq '', '... renders without a warning') or diag($out);
help_in_man('/usr/bin/ecodoc-ca', '/usr/share/man/man1/ecodoc-ca.1.gz',
            'installed');

ok(-f '/usr/share/doc/ecodoc-ca/examples/redis.conf',
   'the example Redis configuration');

# the service: present, sandboxed, not enabled, its user made
ok(-f $UNIT, "the unit: $UNIT");
my %unit;
if (open(my $u, '<', $UNIT)) {
    while (<$u>) {
        $unit{$1} = $2 if /^(\w+)=(.*)$/;
    }
    close $u;
}
is_deeply([ @unit{qw(User Group ProtectSystem PrivateTmp NoNewPrivileges
                     ProtectHome RuntimeDirectory StateDirectory)} ],
          [ $USER, 'www-data', 'strict', 'yes', 'yes',
            'yes', 'ecodoc', 'ecodoc' ],
          '... a system user, www-data\'s group, the sandbox');
ok(!-e '/etc/systemd/system/multi-user.target.wants/ecodoc-enroll.service',
   '... not enabled by the installation');

SKIP: {
    skip('no systemd-analyze (the systemd package) here', 1)
        unless -x '/usr/bin/systemd-analyze';
    ($rc, $out) = run('systemd-analyze', 'verify', $UNIT);
    ok($rc == 0 && $out !~ /ecodoc/, 'systemd-analyze verify accepts it')
        or diag($out);
}

ok(has_user($USER), "the system user $USER");
my @st = stat($DEFAULTS);
is(sprintf('%04o', ($st[2] // 0) & 07777), '0600', "$DEFAULTS is root's only");
@st = stat($STATE);
ok(@st && ($st[2] & 07777) == 0700 && $st[4] == (getpwnam($USER))[2],
   "$STATE: ${USER}'s, 0700");


# ---- the service's command line, as systemd would run it -----------------

my %env = (PATH => '/usr/sbin:/usr/bin:/sbin:/bin');
if (open(my $d, '<', $DEFAULTS)) {
    while (<$d>) {
        $env{$1} = $2 if /^\s*([A-Z_][A-Z0-9_]*)=(.*?)\s*$/;
    }
    close $d;
}
my @exec = map { /^\$(\w+)$/ ? split(' ', $env{$1} // '') : $_ }
           split(' ', $unit{ExecStart} // '');
my $sock = "$RUN/enroll.sock";

ok(grep({ $_ eq "unix:$sock" } @exec), "the service listens on $sock");
($rc, $out) = run('cat', "/usr/share/doc/$MOD/examples/nginx.conf");
like($out, qr{^\s*proxy_pass http://unix:\Q$sock\E:;}m,
     '... where the example nginx.conf sends /enroll/');

SKIP: {
    skip('no ExecStart or CA directory in the unit and its settings', 10)
        unless @exec && $env{ECODOC_CA_DIR};

    $made_ca = 1;
    ($rc, $out) = run('runuser', '-u', $USER, '--', '/usr/bin/ecodoc-ca',
                      'init', '--dir', $env{ECODOC_CA_DIR});
    is($rc, 0, "runuser -u $USER -- ecodoc-ca init --dir $env{ECODOC_CA_DIR}")
        or diag($out);

    $made_run = 1;
    run('install', '-d', '-o', $unit{User}, '-g', $unit{Group},
        '-m', $unit{RuntimeDirectoryMode}, $RUN);

    $server = fork() // die "fork: $!";
    if ($server == 0) {
        %ENV = %env;
        umask(oct($unit{UMask} // '0022'));
        open(STDOUT, '>', "$dir/enroll.log");
        open(STDERR, '>&', \*STDOUT);
        exec('setpriv', "--reuid=$unit{User}", "--regid=$unit{Group}",
             '--init-groups', '--', @exec) or POSIX::_exit(127);
    }
    for (1 .. 100) {
        last if -S $sock;
        select(undef, undef, undef, 0.1);
    }

    @st = stat($sock);
    ok(@st && ($st[2] & 0777) == 0660
       && $st[4] == (getpwnam($unit{User}))[2]
       && $st[5] == (getgrnam('www-data'))[2],
       "$sock: 0660, $unit{User}:www-data")
        or diag(`ls -l $RUN; cat $dir/enroll.log`);

    my @curl = ('curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
                '--unix-socket', $sock, 'http://localhost/enroll/');
    SKIP: {
        skip('no curl', 2) unless -x '/usr/bin/curl';
        ($rc, $out) = run('setpriv', '--reuid=www-data', '--regid=www-data',
                          '--init-groups', '--', @curl);
        is($out, '200', 'www-data (nginx) gets STEP1 through the socket');
        ($rc, $out) = run('setpriv', '--reuid=nobody', '--regid=nogroup',
                          '--clear-groups', '--', @curl);
        is($out, '000', '... nobody else may connect');
    }

    ($rc, $out) = run('setpriv', '--reuid=www-data', '--regid=www-data',
                      '--init-groups', '--', 'cat',
                      "$env{ECODOC_CA_DIR}/ca.key");
    ok($rc != 0 && $out =~ /Permission denied/,
       '... and may not read the CA key');

    stop_server();
    ok(!-e $sock, 'SIGTERM stops it and removes the socket');
    run('rm', '-rf', $RUN);
    $made_run = 0;

    # a purge with a CA in place keeps it
    ($rc, $out) = purge();
    is($rc, 0, 'apt-get purge, with a CA in place') or diag($out);
    ok(-f "$env{ECODOC_CA_DIR}/ca.key" && has_user($USER),
       '... keeps the CA and its user');
    like($out, qr/\Q$STATE\E is not empty/, '... and says so');

    remove_ca();
    $made_ca = 0;

    ($rc, $out) = apt_install();
    is($rc, 0, 'installed again') or diag($out);
}


# ---- purged: nothing left ------------------------------------------------

($rc, $out) = purge();
is($rc, 0, 'apt-get purge ' . join(' ', $MOD, $CA, sort keys %new))
    or diag($out);
ok(!installed($_), "$_ is gone") for ($MOD, $CA, sort keys %new);

my @left = grep { -e $_ || -l $_ }
    $SO, $SNIPPET, $ENABLED, "$ENABLED.removed", $UNIT, $DEFAULTS, $STATE,
    $RUN, '/usr/bin/ecodoc-ca', '/usr/share/man/man1/ecodoc-ca.1.gz',
    '/usr/share/doc/ecodoc-ca', "/usr/share/doc/$MOD",
    '/etc/systemd/system/multi-user.target.wants/ecodoc-enroll.service',
    '/var/lib/systemd/deb-systemd-helper-enabled/ecodoc-enroll.service.dsh-also',
    '/var/lib/systemd/deb-systemd-helper-masked/ecodoc-enroll.service';
is_deeply(\@left, [], 'no file left: module, snippet, symlink, unit, '
          . 'settings, state');
ok(!has_user($USER) && !has_group($USER), "no user or group $USER left");
is_deeply([ sort glob('/etc/nginx/modules-enabled/*') ], \@enabled_before,
          'modules-enabled/ as it was');

($rc, $out) = run($NGINX, '-t');
is($rc, 0, 'nginx -t passes as before') or diag($out);

done_testing();
