#!/usr/bin/perl

# The whole journey: ecodoc-ca init and user add, the enrollment site's
# STEP1-4 through nginx (PKCS#12 and CSR), sign-up and login at the gate
# with the issued certificate, then revocation that the very next request
# feels, and the CRL.

use strict;
use warnings;
use utf8;

use Digest::SHA qw(sha256_hex);
use Encode ();
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(server => $t->enroll_server_conf);
$t->enroll_start();

my $origin = $t->origin;

# --- registration: the two secrets and the notice
my $out = Encode::decode('UTF-8', $t->eca('user', 'add', 'alice', '--cost',
    12, '--site-url', $origin));
like($out, qr/\Auser: alice\ninitial password: \S+\ncertificate password: \S+\n--- notice ---\n/,
    'user add with a CA: user, initial password, certificate password, notice');
my ($initial) = $out =~ /^initial password: (\S+)$/m;
my ($code) = $out =~ /^certificate password: (\S+)$/m;
my ($notice) = $out =~ /--- notice ---\n(.*)\z/s;
ok(defined $notice && length $notice > 200, 'a notice follows');
$notice //= '';
unlike($notice, qr/\Q$initial\E/, 'the notice holds no initial password');
unlike($notice, qr/\Q$code\E/, 'the notice holds no certificate password');
like($notice, qr/ユーザID: alice/, 'notice (ja): the user ID');
like($notice, qr/User ID: alice/, 'notice (en): the user ID');
like($notice, qr{^\Q$origin\E/enroll/$}m, 'notice: the enrollment URL');
like($notice, qr{^\Q$origin\E/ecodoc/signup$}m, 'notice: the sign-up URL');
like($notice, qr{^\Q$origin\E/ecodoc/login$}m, 'notice: the login URL');
like($notice, qr/証明書発行サイト/, 'notice: the site by its name');

my $enr = $t->redis_hash($t->rkey('enroll:alice'));
like($enr->{pw} // '', qr/^\$scrypt\$/, 'the certificate password is stored hashed');
unlike(join(' ', %$enr), qr/\Q$code\E/, '... and never in the clear');
is($enr->{tries}, '0', '... with no tries yet');

# --- the STEP1 page
my $r = $t->http(GET => '/enroll/');
is($r->{status}, 200, 'STEP1 page: 200');
for my $step ('【STEP1】認証情報/パスワードを入力', '【STEP2】',
    '【STEP3】証明書を受け取る', '【STEP4】証明書の確認', '証明書発行サイト')
{
    like($r->{text}, qr/\Q$step\E/, "STEP1 page names $step");
}
like($r->{text}, qr/<html lang="ja">/, 'Japanese by default');
is(hdr($r, 'cache-control'), 'no-store', 'Cache-Control: no-store');
like(hdr($r, 'content-security-policy') // '', qr/default-src 'none'/,
    'a strict CSP');
unlike($r->{body}, qr/<script|\bsrc=|https?:\/\//i,
    'no scripts and no external resources');
ok(defined form_token($r), 'a csrf token in the form');
$r = $t->http(GET => '/enroll/', lang => 'en');
like($r->{text}, qr/Certificate enrollment site/, 'English on request');
like($r->{text}, qr/<html lang="en">/, '... lang="en"');

# --- the PKCS#12 path
my $p12pw = 'Alice-p12-pass';
my $e = $t->enroll('alice', $code, key => 'ec', p12_password => $p12pw);
is($e->{step1}{status}, 303, 'STEP1 with the certificate password: 303');
is($t->location_path($e->{step1}), '/enroll/step2', '... to STEP2');
my ($sc) = grep { /^__Host-enroll=/ } hdr($e->{step1}, 'set-cookie');
like($sc // '', qr/;\s*Secure\b/i, 'session cookie: Secure');
like($sc // '', qr/;\s*HttpOnly\b/i, 'session cookie: HttpOnly');
like($sc // '', qr/;\s*SameSite=Strict\b/i, 'session cookie: SameSite=Strict');
like($sc // '', qr/;\s*Path=\/(;|\z)/i, 'session cookie: Path=/');
my $token = $e->{jar}{'__Host-enroll'} // '';
my $skey = $t->rkey('enroll_sess:' . sha256_hex($token));
my $ttl = $t->redis_cmd('TTL', $skey);
ok($ttl > 0 && $ttl <= 600, "the session lives in Redis for 10 minutes ($ttl s)");
is($t->redis_cmd('HGET', $skey, 'user'), 'alice', '... bound to alice');
is($t->redis_cmd('EXISTS', $t->rkey("enroll_sess:$token")), 0,
    '... under the hash of the token, never the token');

is($e->{step2}{status}, 303, 'STEP2 (ECDSA P-256): 303');
is($t->location_path($e->{step2}), '/enroll/step3', '... to STEP3');
# STEP3's form is answered with the page that says what happened, which
# starts the download (no reload, no form left on screen)
$r = $e->{step3};
is($r->{status}, 303, 'STEP3 PKCS#12: 303');
is($t->location_path($r), '/enroll/step3', '... to the result page');
$r = $e->{issued};
is($r->{status}, 200, 'the result page: 200');
like($r->{text}, qr/証明書を発行しました/, '... says the certificate was issued');
unlike($r->{text}, qr/一致しません|<form/, '... no form, no earlier error');
like($r->{body}, qr{<meta http-equiv="refresh" content="0;url=/enroll/certificate\.p12">},
    '... starts the download of the PKCS#12');
like($r->{text}, qr{href="/enroll/certificate\.p12"}, '... with a link to it');
like($r->{text}, qr{href="/enroll/step4"}, '... and leads to STEP4');
unlike($r->{text}, qr/BEGIN CERTIFICATE|certificate\.pem/,
    '... and offers no bare certificate PEM beside the PKCS#12');
$r = $e->{p12};
is($r->{status}, 200, 'the download: 200');
is(hdr($r, 'content-type'), 'application/x-pkcs12', '... application/x-pkcs12');
like(hdr($r, 'content-disposition') // '', qr/^attachment;\s*filename="alice\.p12"/,
    '... as an attachment');
$t->install_p12('alice-p12', $r->{body}, $p12pw);
my $fp = $t->fingerprint('alice-p12');
my $text = $t->openssl_out('x509', '-in', $t->path('alice-p12.crt'), '-noout',
    '-text', '-nameopt', 'RFC2253');
like($text, qr/Subject: CN=alice,O=Ecodoc Enroll Test/, 'issued to CN=alice');
like($text, qr/Public-Key: \(256 bit\)/, '... an EC P-256 key');
like($t->openssl_out('pkcs12', '-in', $t->path('alice-p12.p12'), '-info',
    '-noout', '-passin', "pass:$p12pw"), qr/AES-256-CBC/,
    '... the PKCS#12 is protected with AES-256');

ok(grep({ $_ eq $fp } @{ $t->redis_cmd('SMEMBERS', $t->rkey('certs:alice')) || [] }),
    'certs:alice holds the fingerprint');
is($t->redis_cmd('HGET', $t->rkey("certinfo:$fp"), 'user'), 'alice',
    'certinfo:FP names alice');
ok(grep({ $_->{event} eq 'certificate_issued' && $_->{fp} eq $fp
    && $_->{addr} eq '127.0.0.1' } $t->audit),
    'audit: certificate_issued with the client address');
like($t->eca('certs', 'alice'), qr/^\S+\s+alice\s+valid\s+\S+\s+$fp$/m,
    'certs: valid in the CA database');

# STEP3 again: the password is used
$r = $t->enroll_get('/enroll/step3', $e->{jar});
like($r->{text}, qr/証明書を発行しました/, 'STEP3 after issuance says so');
unlike($r->{body}, qr/http-equiv="refresh"/,
    '... without downloading the file once more by itself');
like($r->{text}, qr{href="/enroll/certificate\.p12"}, '... but with its link');
$r = $t->enroll_get('/enroll/certificate.p12', $e->{jar});
is(hdr($r, 'content-type'), 'application/x-pkcs12',
    'the PKCS#12 can be downloaded again while the session lasts');
$r = $t->enroll_get('/enroll/step3', $e->{jar});
like($r->{text}, qr{href="/enroll/step4"}, '... and leads to STEP4');
like($r->{text}, qr/Windows.*macOS.*Firefox.*Chrome \(Linux\)/s,
    '... with import instructions for Windows, macOS, Firefox, Chrome on Linux');
$r = $t->enroll_post('/enroll/step3', $e->{jar},
    [mode => 'p12', p12pw => $p12pw, p12pw2 => $p12pw], csrf => $e->{csrf});
is($r->{status}, 403, 'a second issuance in the session: 403');
is(scalar @{ $t->redis_cmd('SMEMBERS', $t->rkey('certs:alice')) }, 1,
    '... no second certificate');

# --- STEP4
$r = $t->http(GET => '/enroll/step4', cert => 'alice-p12',
    cookies => $e->{jar}, lang => 'en');
is($r->{status}, 200, 'STEP4 with the certificate: 200');
like($r->{text}, qr{id="fingerprint">$fp<}, '... its fingerprint');
like($r->{text}, qr{id="subject">[^<]*CN = alice}, '... its subject');
my ($serial) = $t->openssl_out('x509', '-in', $t->path('alice-p12.crt'),
    '-noout', '-serial') =~ /serial=([0-9A-F]+)/;
like($r->{text}, qr{id="serial">$serial<}, '... its serial');
like($r->{text}, qr{id="not-after">\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC<},
    '... its expiry, as people read a date');
like($r->{text}, qr{id="days-left">39[67]<}, '... and the days left');
like($r->{text}, qr/This is the certificate issued in this enrollment\./,
    '... the one just issued');
$r = $t->http(GET => '/enroll/step4', cert => 'alice-p12');
like($r->{text}, qr/本サービスの認証局が発行した有効な証明書です/,
    'STEP4 without the session: valid in the CA database');
$r = $t->http(GET => '/enroll/step4', lang => 'en');
is($r->{status}, 403, 'STEP4 without a certificate: 403');
like($r->{text}, qr/No client certificate/, '... says why');
like($r->{text}, qr{id="install".*Chrome \(Linux\).*href="/enroll/step4"}s,
    '... and shows the install instructions again, then the way to STEP4');
$r = $t->http(GET => '/enroll/install', lang => 'en');
is($r->{status}, 200, 'the install instructions on their own: 200');
like($r->{text}, qr/Chrome \(Linux\).*href="\/enroll\/step4"/s,
    '... for every browser, then the way to STEP4');
$r = $t->http(GET => '/enroll/step4', cert => 'alice-p12');
like($r->{text}, qr{id="not-after">\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d \(UTC\)<},
    'STEP4 in Japanese: the expiry as a Japanese date');
my $pem = $t->read_file('alice-p12.crt');
$r = $t->http(GET => '/enroll/step4', lang => 'en',
    headers => ['X-Ecodoc-Client-Cert' => urlencode($pem)]);
is($r->{status}, 403, 'STEP4 with a forged X-Ecodoc-Client-Cert: 403');
$t->cert('stranger');
$r = $t->http(GET => '/enroll/step4', cert => 'stranger', lang => 'en');
like(html_unescape($r->{text}), qr/not in this service's CA database/,
    'STEP4 with a certificate of another CA: not in the database');

# --- sign-up and login at the gate with the issued certificate
$r = $t->signup('alice-p12', 'alice', $initial);
is($r->{status}, 200, 'sign-up with the issued certificate: 200');
$r = $t->login('alice-p12', 'alice', $initial);
is($r->{status}, 303, 'login: 303');
my $c = cookie($r);
$r = $t->change_password('alice-p12', $c, $initial, 'Alice-new-2024');
is($r->{status}, 200, 'initial password changed');
$c = cookie($r) // $c;
$r = $t->http(GET => '/docs', cert => 'alice-p12', cookie => $c);
is($r->{status}, 200, 'the backend with the issued certificate');
is(backend_user($r), 'alice', '... as alice');

# --- the CSR path
$out = $t->eca('user', 'add', 'bob', '--cost', 12, '--site-url', $origin);
my ($bob_initial) = $out =~ /^initial password: (\S+)$/m;
my ($bob_code) = $out =~ /^certificate password: (\S+)$/m;
my $csr = $t->csr('bob-csr', type => 'ec', subject => '/O=Evil/CN=mallory');
$e = $t->enroll('bob', $bob_code, csr => $csr, lang => 'en');
$r = $e->{step3};
is($r->{status}, 200, 'STEP3 with a CSR: 200');
like(hdr($r, 'content-type'), qr{^text/html}, '... a page');
my ($bob_pem) = $r->{body} =~ m{<pre id="certificate">(.*?)</pre>}s;
$bob_pem = html_unescape($bob_pem // '');
like($bob_pem, qr/^-----BEGIN CERTIFICATE-----\n.*-----END CERTIFICATE-----\n\z/s,
    '... with the PEM certificate');
$t->write_file('bob-csr.crt', $bob_pem);
$text = $t->openssl_out('x509', '-in', $t->path('bob-csr.crt'), '-noout',
    '-subject', '-nameopt', 'RFC2253');
like($text, qr/subject=CN=bob,O=Ecodoc Enroll Test/,
    "the CSR's subject is ignored: CN=bob, our O");
is($t->openssl_out('x509', '-in', $t->path('bob-csr.crt'), '-noout',
    '-pubkey'), $t->openssl_out('pkey', '-in', $t->path('bob-csr.key'),
    '-pubout'), "... over the CSR's key");
$r = $t->enroll_get('/enroll/certificate.pem', $e->{jar});
is($r->{status}, 200, 'the PEM for download: 200');
is($r->{body}, $bob_pem, '... the same certificate');
$r = $t->http(GET => '/enroll/step4', cert => 'bob-csr',
    cookies => $e->{jar}, lang => 'en');
like($r->{text}, qr/This is the certificate issued in this enrollment\./,
    'STEP4: the CSR certificate is the one just issued');
$r = $t->http(GET => '/enroll/step4', cert => 'alice-p12',
    cookies => $e->{jar}, lang => 'en');
like($r->{text}, qr/This is not the certificate issued in this enrollment\./,
    "STEP4 with alice's certificate in bob's enrollment: not this one");

$r = $t->signup('bob-csr', 'bob', $bob_initial);
is($r->{status}, 200, 'bob signs up with the CSR certificate');
$r = $t->login('bob-csr', 'bob', $bob_initial);
my $bc = cookie($r);
$r = $t->change_password('bob-csr', $bc, $bob_initial, 'Bob-new-2024');
$bc = cookie($r) // $bc;
$r = $t->http(GET => '/docs', cert => 'bob-csr', cookie => $bc);
is(backend_user($r), 'bob', 'bob reaches the backend');

# --- revocation: the very next request is refused, no reload
my $before = $t->backend_requests;
$out = $t->eca('revoke', '--serial', $serial, '--reason', 'keyCompromise');
like($out, qr/^revoked: $fp alice$/m, 'revoke --serial: names the certificate');
$r = $t->http(GET => '/docs', cert => 'alice-p12', cookie => $c);
is($r->{status}, 403, 'the next request with the revoked certificate: 403');
is($t->backend_requests, $before, '... the backend saw nothing');
is($t->redis_cmd('GET', $t->rkey("revoked:$fp")), 'keyCompromise',
    'revoked:FP holds the reason');
is($t->redis_cmd('EXISTS', $t->rkey("cert:$fp")), 0, 'the binding is gone');
is($t->redis_cmd('SCARD', $t->rkey('user:alice:certs')), 0,
    '... from the user too');
is($t->redis_cmd('EXISTS', $t->rkey('user:alice:sessions')), 0,
    "alice's sessions ended");
ok(grep({ $_->{event} eq 'revoked' && $_->{fp} eq $fp } $t->audit),
    'audit: revoked');
like($t->eca('certs', 'alice'), qr/\brevoked\b/, 'certs: revoked');
my $crl = $t->openssl_out('crl', '-in', $t->path('eca/crl.pem'), '-noout',
    '-text');
like($crl, qr/Serial Number: $serial\b/, 'the CRL lists the serial');
like($crl, qr/Key Compromise/, '... with the reason');
like($crl, qr/Next Update:/, '... and a next update');
like($t->openssl_out('crl', '-in', $t->path('eca/crl.pem'), '-noout',
    '-CAfile', $t->path('eca/ca.crt')), qr/verify OK/,
    '... signed by the CA');
$r = $t->http(GET => '/enroll/step4', cert => 'alice-p12', lang => 'en');
like($r->{text}, qr/This certificate has been revoked\./,
    'STEP4: the revoked certificate is shown as revoked');
$r = $t->http(GET => '/docs', cert => 'bob-csr', cookie => $bc);
is(backend_user($r), 'bob', "bob's certificate still works");

# --- the server stops cleanly on SIGTERM
$t->enroll_stop();
ok(!-e $t->enroll_sock, 'SIGTERM: the socket is removed');
like($t->read_file('enroll.log') // '', qr/stopped/, '... and it says so');

is(scalar $t->crashes, 0, 'no nginx worker crashed');

done_testing();
