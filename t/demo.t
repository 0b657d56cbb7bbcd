#!/usr/bin/perl

# `make demo` shows the whole service: demo/run.pl starts it on a free
# port, and the walkthrough it prints (walkthrough.sh) is run as a user
# would paste it: STEP1-4 on the enrollment site, then the sign-up, the
# login, the password change, the service TOP page and the logout with
# the certificate the site issued. Ctrl-C (SIGINT) stops and removes it.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Encode ();
use File::Spec;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test;

for my $v (qw(ECODOC_MODULE ECODOC_CA)) {
    plan skip_all => "$v is not set" unless $ENV{$v};
}
plan skip_all => 'curl is not installed' unless Ecodoc::Test::which('curl');

my ($port) = Ecodoc::Test::free_ports(1);
my $out = File::Spec->catfile(File::Spec->tmpdir, "ecodoc-demo-$$.out");

my $pid = fork() // die "fork: $!";
if ($pid == 0) {
    open(STDOUT, '>', $out) or POSIX::_exit(127);
    open(STDERR, '>&', \*STDOUT);
    $ENV{ECODOC_DEMO_PORT} = $port;
    exec($^X, "$FindBin::Bin/../demo/run.pl") or POSIX::_exit(127);
}

sub slurp {
    open(my $fh, '<:encoding(UTF-8)', $_[0]) or return '';
    local $/;
    return scalar <$fh>;
}

END {
    if ($pid && kill(0, $pid)) {
        kill 'INT', $pid;
        waitpid($pid, 0);
    }
    unlink $out if $out;
}

my $text = '';
my $deadline = time + 120;
while (time < $deadline) {
    $text = slurp($out);
    last if $text =~ /ecodoc demo is running|FAILED/;
    last if waitpid($pid, POSIX::WNOHANG()) == $pid;
    sleep 0.2;
}
like($text, qr/ecodoc demo is running/, 'make demo starts') or diag($text);
like($text, qr/^  certificate password  \S+/m,
    '... prints the certificate password');
like($text, qr/^  initial password      \S+/m, '... and the initial password');
like($text, qr/^  \| .*ユーザID: demo/m,
    '... and the registration notice of ecodoc-ca user add');
like($text, qr{https://localhost:$port/enroll/}, '... with the enrollment URL');
my ($dir) = $text =~ /^cd (\S+)$/m;
ok($dir && -f "$dir/walkthrough.sh", '... and the walkthrough')
    or BAIL_OUT('no walkthrough');
ok(-f "$dir/eca/ca.crt" && -f "$dir/eca/index.tsv",
    "... its clients' CA made by ecodoc-ca init");

my $walk = Encode::decode('UTF-8', `bash '$dir/walkthrough.sh' 2>&1`);
is($? >> 8, 0, 'the walkthrough runs') or diag($walk);

my @steps = (
    [qr{HTTP/2 303\s+location: /enroll/step2}, 'STEP1: 303 to STEP2'],
    [qr{HTTP/2 303\s+location: /enroll/step3}, 'STEP2: 303 to STEP3'],
    [qr{HTTP/2 303\s+location: /enroll/step3}, 'STEP3: 303 to the result page'],
    [qr{HTTP/2 200\s+content-disposition: attachment; filename="demo\.p12"},
        'STEP3: the PKCS#12 downloaded'],
    [qr{サブジェクト.*CN = demo.*有効期限\d{4}年.*本サービスの認証局が発行した有効な証明書}s,
        'STEP4: the issued certificate presented and recognised'],
    [qr{HTTP/2 303\s+location: /ecodoc/signup}, 'GET /: 303 to the sign-up'],
    [qr{サインアップが完了しました}, 'the sign-up'],
    [qr{HTTP/2 303\s+location: /ecodoc/password\s+HTTP/2 303\s+location: /ecodoc/password},
        'the login, then only the password page'],
    [qr{パスワードを変更しました}, 'the password change'],
    [qr{サービス TOP.*ようこそ demo さん.*X-Ecodoc-User: demo\n}s,
        'the service TOP page as demo (the forged X-Ecodoc-User dropped)'],
    [qr{ログアウトしました.*\nHTTP/2 303\s+location: /ecodoc/login}s,
        'the logout, then the login page again'],
);
my $pos = 0;
for my $s (@steps) {
    my ($re, $name) = @$s;
    pos($walk) = $pos;
    if ($walk =~ /\G.*?$re/gcs) {
        pass($name);
        $pos = pos($walk);
    } else {
        fail($name);
    }
}
unlike($walk, qr/mallory/, 'the forged identity never reaches the backend');
my $fp = `openssl x509 -in '$dir/demo.crt' -noout -fingerprint -sha256`;
$fp =~ s/.*=//s;
$fp =~ s/[:\s]//g;
like($walk, qr/X-Ecodoc-Cert-Fingerprint: \Q${\ lc $fp}\E/,
    '... which sees the fingerprint of the certificate the site issued');

# Ctrl-C: everything stops, the directory goes
kill 'INT', $pid;
my $gone = 0;
for (1 .. 100) {
    if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
        $gone = 1;
        last;
    }
    sleep 0.1;
}
ok($gone, 'Ctrl-C stops the demo');
ok(!-d $dir, '... and removes its directory');

done_testing();
