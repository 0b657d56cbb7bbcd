#!/usr/bin/perl

# The whole journey in a real browser: headless Debian Chromium, driven by
# e2e/journey.mjs (playwright-core), against nginx with the module, Redis,
# the demo backend and the enrollment server, all started here with the
# harness. Once in Japanese and once in English, each with its own user:
#
#   main    enrollment STEP1-4 (the PKCS#12 downloaded by the browser and
#           imported into its NSS store with pk12util), sign-up, login with
#           the initial password, the forced change, the service, logout,
#           six wrong passwords and the lock
#   (here)  the server's side of it: Redis and the audit trail; the
#           administrator unlocks the user and issues a second certificate
#   second  another browser with that second certificate: refused
#   renew   with nginx reloaded to give the certificate-expiry notice
#           (ecodoc_cert_expiry_notice, ecodoc_renewal_url), the first
#           browser follows its link to the renewal, signs the new
#           certificate up, and the old one is refused
#
# Client certificates are picked by Chromium's AutoSelectCertificateForUrls
# policy, a uniquely named JSON file in /etc/chromium/policies/managed that
# is removed at the end, also when the test dies or is interrupted.
#
# Skips when node (20+) or e2e/node_modules are missing; skips when
# chromium or pk12util/certutil are missing unless CI is set: `make test`
# installs those Debian packages, so there a missing
# piece fails. ECODOC_SCREENSHOTS=DIR writes the screenshots there (`make
# e2e` gives docs/screenshots).

use strict;
use warnings;
use utf8;

use Cwd qw(abs_path);
use Encode ();
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use FindBin;
use IO::Handle;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $ROOT = abs_path("$FindBin::Bin/..");
my $E2E = "$ROOT/e2e";
my $CI = ($ENV{CI} // '') =~ /^(1|true|yes)$/i;

# --- what it needs
my $chromium = $ENV{ECODOC_CHROMIUM} || '/usr/bin/chromium';
my $policy_dir = $ENV{ECODOC_CHROMIUM_POLICY_DIR}
    || '/etc/chromium/policies/managed';
my (@missing, @no_driver);
push @missing, "no $chromium (apt-get install chromium)" unless -x $chromium;
for my $bin (qw(pk12util certutil)) {
    push @missing, "no $bin in PATH (apt-get install libnss3-tools)"
        unless Ecodoc::Test::which($bin);
}
# the driver comes from npm, not Debian: a machine without Node.js 20 or
# without the npm registry skips, even under CI, and says so
if (Ecodoc::Test::which('node')) {
    my ($major) = (`node --version` // '') =~ /^v(\d+)\./;
    push @no_driver, 'Node.js 20 or later (playwright-core needs it), not '
        . ($major // '?') unless ($major // 0) >= 20;
} else {
    push @no_driver, 'no node in PATH (apt-get install nodejs)';
}
push @no_driver, "no $E2E/node_modules/playwright-core (npm ci in e2e/)"
    unless -f "$E2E/node_modules/playwright-core/package.json";
if (@no_driver) {
    diag("THE BROWSER TEST DID NOT RUN: $_") for @no_driver;
    plan(skip_all => join('; ', @no_driver));
}
if (!@missing) {
    # the policy directory: made if need be, and writable (root)
    system('mkdir', '-p', $policy_dir) unless -d $policy_dir;
    push @missing, "cannot write Chromium's policy directory $policy_dir (not root?)"
        unless -d $policy_dir && -w $policy_dir;
}
if (@missing) {
    if ($CI) {
        fail("the end-to-end test needs: $_") for @missing;
        done_testing();
        exit 1;
    }
    plan(skip_all => join('; ', @missing));
}

# --- the policy file: made now, removed whatever happens
my $policy = "$policy_dir/ecodoc-e2e-$$-" . int(rand(1e9)) . '.json';
my $work = tempdir('ecodoc-e2e-XXXXXX', TMPDIR => 1, CLEANUP => 0);
my $OWNER = $$;
my $child;    # the driver's pid while it runs

sub cleanup {
    return unless $$ == $OWNER;
    if ($child) {
        kill 'TERM', -$child;
        sleep 0.5;
        kill 'KILL', -$child;
        waitpid($child, 0);
        undef $child;
    }
    unlink $policy if -e $policy;
    remove_tree($work) if -d $work && !$ENV{ECODOC_KEEP};
}
END { local $?; cleanup() }

# --- the servers
my $t = Ecodoc::Test->new();
# after new(): the harness installs its own handlers there
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { cleanup(); Ecodoc::Test::cleanup_all(); POSIX::_exit(130) };
}
$t->eca_init();
# the password rules of conf/nginx.conf, each with its Japanese and its
# English message (the harness's own rule has one message for both): the
# screenshots show each page's rules in its own language
my @rules = (
    ['[0-9]',    '数字を1文字以上含める', 'At least one digit'],
    ['[A-Za-z]', '英字を1文字以上含める', 'At least one letter'],
);
$t->start(server => $t->enroll_server_conf, directives => {
    ecodoc_password_require => [map { join ' ', map { qq("$_") } @$_ } @rules],
});
# for the driver: one message a line, the page's language and the other
my %rule_texts = (
    ja => Encode::encode('UTF-8', join "\n", map { $_->[1] } @rules),
    en => Encode::encode('UTF-8', join "\n", map { $_->[2] } @rules),
);
$t->enroll_start('--renewal', 'on');
my $origin = $t->origin;
my ($enroll_ca_cn) = $t->openssl_out('x509', '-in', $t->path('eca/ca.crt'),
    '-noout', '-subject', '-nameopt', 'RFC2253') =~ /CN=([^,\n]+)/;
ok(defined $enroll_ca_cn, "the enrollment CA: CN=" . ($enroll_ca_cn // '?'));

# nginx' certificate is issued by the harness CA: the browser trusts that one
my ($server_ca) = $t->read_file('ca.crt')
    =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n)/s;
my $server_ca_file = "$work/server-ca.pem";
$t->write_file($server_ca_file, $server_ca);

# AutoSelectCertificateForUrls: this origin, certificates of the
# enrollment CA (the one the server accepts for users)
my $rule = sprintf('{"pattern":"%s","filter":{"ISSUER":{"CN":"%s"}}}',
    'https://localhost:*', $enroll_ca_cn // '');
(my $quoted = $rule) =~ s/(["\\])/\\$1/g;
$t->write_file($policy, qq({"AutoSelectCertificateForUrls": ["$quoted"]}\n));
ok(-s $policy, "policy: $policy");

my $shots = $ENV{ECODOC_SCREENSHOTS} // '';
$shots = abs_path($shots) // "$ROOT/$shots" if $shots ne '';

# run the driver for a phase; its "ok"/"not ok" lines become our tests
sub driver {
    my ($phase, %env) = @_;
    my %e = (
        E2E_ORIGIN      => $origin,
        E2E_WORK        => $work,
        E2E_SERVER_CA   => $server_ca_file,
        E2E_CHROMIUM    => $chromium,
        E2E_SCREENSHOTS => $shots,
        %env,
    );
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        close $r;
        open(STDOUT, '>&', $w) or POSIX::_exit(127);
        open(STDERR, '>&', $w) or POSIX::_exit(127);
        open(STDIN, '<', '/dev/null');
        @ENV{keys %e} = values %e;
        chdir $ROOT;
        exec('node', "$E2E/journey.mjs", $phase) or POSIX::_exit(127);
    }
    $child = $pid;
    close $w;
    my ($passed, $failed, @out) = (0, 0);
    my $deadline = time + ($ENV{ECODOC_E2E_TIMEOUT} || 150);
    my $buf = '';
    my $timed_out = 0;
    my $rin = '';
    vec($rin, fileno($r), 1) = 1;
    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) { $timed_out = 1; last }
        my $n = select(my $rout = $rin, undef, undef, $left);
        next if $n < 1;
        my $got = sysread($r, $buf, 65536, length $buf);
        last unless $got;
        while ($buf =~ s/\A([^\n]*)\n//) {
            my $l = Encode::decode('UTF-8', $1);
            push @out, $l;
            if ($l =~ /^ok - (.*)/) { pass($1); $passed++ }
            elsif ($l =~ /^not ok - (.*)/) { fail($1); $failed++ }
            elsif ($l =~ /^# ((?:screenshot|note:) .*)/) { note($1) }
            elsif ($l =~ /^# (.*)/) { diag($1) if $failed }
            else { diag($l) }
        }
    }
    close $r;
    if ($timed_out) {
        kill 'TERM', -$pid;
        sleep 1;
        kill 'KILL', -$pid;
        fail("$phase: the driver did not finish in time");
    }
    waitpid($pid, 0);
    my $status = $?;
    undef $child;
    unless (ok($status == 0, "$phase: the driver exits 0")) {
        # what nginx and the enrollment server had to say about it
        my @why = grep { /\[(info|warn|error|crit|alert)\].*ecodoc:/
                && !/Redis connection|connected to Redis/ }
            split /\n/, $t->error_log;
        splice @why, 0, @why - 10 if @why > 10;
        diag("nginx error.log:\n" . join("\n", @why)) if @why;
        my @enr = split /\n/, $t->read_file('enroll.log') // '';
        splice @enr, 0, @enr - 10 if @enr > 10;
        diag("enroll.log:\n" . join("\n", @enr)) if @enr;
    }
    ok($passed > 0, "$phase: the driver checked something ($passed passed, $failed failed)");
    return $status == 0;
}

my $started = time;

for my $lang (qw(ja en)) {
    my $u = $lang eq 'ja' ? 'yamada' : 'alice';
    my $initial = $t->add_user($u);
    my ($code) = $t->ca('enroll-code', $u, '--cost', 12)
        =~ /^certificate password: (\S+)$/m;
    ok(defined $code, "$lang: user $u with a certificate password");
    my $new = "Yamada-Ecodoc-2024";
    $new = 'Alice-Ecodoc-2024' if $lang eq 'en';
    my $p12pw = "p12-$lang-secret";
    my $audit_from = $t->audit_last_id;

    driver('main', E2E_LANG => $lang, E2E_USER => $u, E2E_CODE => $code,
        E2E_INITIAL => $initial, E2E_NEW_PASSWORD => $new,
        E2E_P12_PASSWORD => $p12pw, E2E_RULES => $rule_texts{$lang},
        E2E_OTHER_RULES => $rule_texts{$lang eq 'ja' ? 'en' : 'ja'})
        or last;

    # what the server saw
    my %ev;
    $ev{$_->{event}}++ for grep { ($_->{user} // '') eq $u } $t->audit(after => $audit_from);
    for my $e (qw(enroll_started enroll_failed certificate_issued signup login password_changed logout login_failed lock)) {
        ok($ev{$e}, "$lang: audit has $e for $u") or diag(join ' ', sort keys %ev);
    }
    is($t->is_locked($u), 1, "$lang: $u is locked in Redis");
    my @certs = @{ $t->redis_cmd('SMEMBERS', $t->rkey("user:$u:certs")) || [] };
    is(scalar @certs, 1, "$lang: one certificate bound to $u");

    # the administrator unlocks; a certificate for another PC, not signed up
    $t->ca('user', 'unlock', $u);
    is($t->is_locked($u), 0, "$lang: unlocked by the administrator");
    my $p12 = "$work/second-$u.p12";
    $t->write_file("$work/second.pass", "second-$lang-secret\n");
    $t->eca('issue', $u, '--p12', $p12, '--p12-password-file',
        "$work/second.pass");
    driver('second', E2E_LANG => $lang, E2E_USER => $u,
        E2E_NEW_PASSWORD => $new, E2E_SECOND_P12 => $p12,
        E2E_SECOND_P12_PASSWORD => "second-$lang-secret") or last;
    is($t->failures($u), 0, "$lang: the refused second certificate counted no failure");
    @certs = @{ $t->redis_cmd('SMEMBERS', $t->rkey("user:$u:certs")) || [] };
    is(scalar @certs, 1, "$lang: still one certificate bound to $u");

    # the first PC renews its certificate, led there by the expiry notice:
    # nginx reloaded to give it in the last 400 days (the certificate
    # lasts 397) with a link to the renewal page, then back as it was
    $t->nginx_reload(http => "    ecodoc_cert_expiry_notice 400;\n"
        . "    ecodoc_renewal_url /enroll/renew;\n");
    $audit_from = $t->audit_last_id;
    my $renewed = driver('renew', E2E_LANG => $lang, E2E_USER => $u,
        E2E_NEW_PASSWORD => $new, E2E_P12_PASSWORD => $p12pw,
        E2E_RENEW_P12_PASSWORD => "renew-$lang-secret",
        E2E_RULES => $rule_texts{$lang},
        E2E_OTHER_RULES => $rule_texts{$lang eq 'ja' ? 'en' : 'ja'});
    $t->nginx_reload(http => '');
    last unless $renewed;
    %ev = ();
    $ev{$_->{event}}++ for grep { ($_->{user} // '') eq $u } $t->audit(after => $audit_from);
    for my $e (qw(renewal_requested renewal_issued renewal_taken_over revoked)) {
        ok($ev{$e}, "$lang: audit has $e for $u") or diag(join ' ', sort keys %ev);
    }
    ok($t->redis_cmd('EXISTS', $t->rkey("revoked:$certs[0]")),
        "$lang: the first certificate is revoked");
}

is(scalar $t->crashes, 0, 'no nginx worker crashed');
note(sprintf 'the browser journey took %.0f s', time - $started);

done_testing();
