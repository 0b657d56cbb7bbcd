#!/usr/bin/perl

# Every ecodoc-ca command family under valgrind (memcheck): init, the user
# commands, enroll-code, issue (CSR and PKCS#12), certs, revoke, crl,
# audit, metrics, and an enroll-server session (STEP1-4 and a stop). Each
# run must end without an invalid read or write and without a definite or
# indirect leak (--error-exitcode=1 --leak-check=full
# --errors-for-leak-kinds=definite,indirect); the enrollment server's
# threads close their Redis connections (no hiredis block left behind).

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $valgrind = `command -v valgrind 2>/dev/null`;
chomp $valgrind;
plan skip_all => 'no valgrind (apt-get install valgrind)' unless $valgrind;
# under make test-asan ecodoc-ca is built with ASan, which valgrind cannot
# run, and which checks the same (invalid accesses, leaks at exit) in
# every test file
plan skip_all => 'make test-asan: ASan checks ecodoc-ca instead'
    if Ecodoc::Test::sanitized();

my $t = Ecodoc::Test->new();
my $real = $t->{ca_tool};
my $logs = $t->path('valgrind');
mkdir $logs or die "$logs: $!";

# ecodoc-ca through valgrind, a log per process
$t->write_file('ecodoc-ca-vg', <<"EOT");
#!/bin/sh
exec $valgrind --error-exitcode=1 --leak-check=full \\
    --errors-for-leak-kinds=definite,indirect --track-fds=no \\
    --log-file=$logs/%p.log $real "\$@"
EOT
chmod 0755, $t->path('ecodoc-ca-vg');
$t->{ca_tool} = $t->path('ecodoc-ca-vg');

my $dir = $t->eca_dir;

# a command under valgrind: it must exit as expected (valgrind's own
# verdict is read from its log at the end); its stdout
sub run {
    my ($name, $exit, @args) = @_;
    my $dir_too = !grep { $args[0] eq $_ } qw(user audit metrics enroll-code);
    my $r = $dir_too ? $t->eca({}, @args) : $t->ca({}, @args);
    is($r->{exit}, $exit, "$name: exit $exit") or diag($r->{err});
    return $r->{out};
}

# --- the commands (cost 10: scrypt under valgrind is slow)
$t->eca_init();
$t->start(server => $t->enroll_server_conf);

like(run('user add', 0, 'user', 'add', 'alice', '--cost', 10),
    qr/^initial password: \S+$/m, '... prints the passwords');
like(run('user show', 0, 'user', 'show', 'alice'), qr/alice/,
    '... the user');
like(run('user list', 0, 'user', 'list'), qr/alice/, '... the users');
run('user reset-password', 0, 'user', 'reset-password', 'alice',
    '--cost', 10);
run('user unlock', 0, 'user', 'unlock', 'alice');
run('user show of an unknown user', 1, 'user', 'show', 'nobody-here');
run('user add with a bad user ID', 2, 'user', 'add', 'bad user');

$t->csr('alice');
run('issue --csr', 0, 'issue', 'alice', '--csr', $t->path('alice.csr'),
    '--out', $t->path('alice.crt'));
$t->write_file('p12.pass', "p12-secret\n");
# --legacy: the same path with 2048 PBKDF2 rounds, not 600,000 (minutes
# under valgrind)
run('issue --p12', 0, 'issue', 'alice', '--p12', $t->path('alice.p12'),
    '--p12-password-file', $t->path('p12.pass'), '--legacy');
like(run('certs', 0, 'certs', 'alice'), qr/alice/, '... the certificates');
run('revoke', 0, 'revoke', '--user', 'alice', '--reason', 'superseded');
run('crl', 0, 'crl');
run('audit', 0, 'audit', '--count', 5);
like(run('metrics', 0, 'metrics'), qr/^ecodoc_/m, '... the metrics');

# --- an enroll-server session: STEP1-3 (a CSR: the PKCS#12 path is the
# one issue --p12 ran), the certificate, STEP4, then SIGTERM
my ($code) = run('enroll-code', 0, 'enroll-code', 'alice', '--cost', 10)
    =~ /^certificate password: (\S+)$/m;
ok($code, '... the certificate password');

$t->enroll_start();
my $res = $t->enroll('alice', $code, lang => 'en',
    csr => $t->csr('enrolled'));
is($res->{step3}{status}, 200, 'enroll-server: STEP1-3 sign a CSR')
    or diag($t->logs('enroll'));
my $r = $t->enroll_get('/enroll/certificate.pem', $res->{jar});
like($r->{body}, qr/BEGIN CERTIFICATE/, '... and hand out the certificate');
$t->write_file('enrolled.crt', $r->{body});
$t->{certs}{enrolled} = 1;
$r = $t->enroll_get('/enroll/step4', $res->{jar}, cert => 'enrolled',
    lang => 'en');
is($r->{status}, 200, '... STEP4 sees the certificate');
(undef, $r) = $t->enroll_step1('alice', 'wrong-guess');
is($r->{status}, 401, '... a wrong certificate password: 401');
is($t->http(GET => '/enroll/nowhere')->{status}, 404, '... a 404');
$t->enroll_stop();

run('user delete', 0, 'user', 'delete', 'alice');

# --- what valgrind saw, process by process
my %seen;
opendir(my $dh, $logs) or die "$logs: $!";
for my $log (sort grep { /\.log$/ } readdir $dh) {
    my $text = $t->read_file("valgrind/$log");
    my ($cmd) = $text =~ /^==\d+== Command: \S+ (.*)$/m;
    next unless defined $cmd;
    $cmd =~ s/--(redis|prefix) \S+ //g;
    my ($family) = $cmd =~ /^(user \S+|\S+)/;
    $seen{$family}++;
    my ($errors) = $text =~ /ERROR SUMMARY: (\d+) errors/;
    my ($definite) = $text =~ /definitely lost: ([\d,]+) bytes/;
    my ($indirect) = $text =~ /indirectly lost: ([\d,]+) bytes/;
    my $ok = defined $errors && $errors == 0
        && ($definite // 0) eq '0' && ($indirect // 0) eq '0';
    ok($ok, "valgrind: $family: no error, no leak")
        or diag($text);
    if ($family eq 'enroll-server') {
        unlike($text, qr/possibly lost: [1-9]|redisConnect|redisContextInit/,
            '... no hiredis connection left open by a request');
    }
}

for my $family ('init', 'user add', 'user show', 'user list',
    'user reset-password', 'user unlock', 'user delete', 'issue', 'certs',
    'revoke', 'crl', 'audit', 'metrics', 'enroll-code', 'enroll-server')
{
    ok($seen{$family}, "valgrind ran $family");
}

done_testing();
