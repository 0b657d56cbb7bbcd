#!/usr/bin/perl

# ecodoc-ca as a CA on the command line: init (modes, passphrase, no
# overwrite), issue (CSR and PKCS#12; the fields of what it signs), certs,
# revoke (by serial, fingerprint, user), crl; user add with a CA.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
my $out = $t->eca_init('--org', 'Ecodoc Clients');
$t->start();

my $dir = $t->eca_dir;

# --- init
like($out, qr/^CA created in \Q$dir\E$/m, 'init: says where');
is((stat $dir)[2] & 07777, 0700, 'CA directory mode 0700');
is((stat "$dir/ca.key")[2] & 07777, 0600, 'ca.key mode 0600');
ok(-s "$dir/crl.pem", 'init writes crl.pem');
ok(-f "$dir/index.tsv", 'init writes the database');
my $ca_text = $t->openssl_out('x509', '-in', "$dir/ca.crt", '-noout', '-text');
like($ca_text, qr/Basic Constraints: critical\s+CA:TRUE/, 'CA: CA:TRUE, critical');
like($ca_text, qr/Key Usage: critical\s+Certificate Sign, CRL Sign/,
    'CA: keyCertSign, cRLSign');
like($ca_text, qr/Subject Key Identifier/, 'CA: SKI');
like($ca_text, qr/ASN1 OID: prime256v1/, 'CA: ECDSA P-256 by default');
like($t->openssl_out('crl', '-in', "$dir/crl.pem", '-noout', '-text'),
    qr/No Revoked Certificates/, 'the first CRL is empty');

my $key_before = $t->read_file("$dir/ca.key");
my $r = $t->ca({}, 'init', '--dir', $dir);
is($r->{exit}, 1, 'init over an existing CA: exit 1');
like($r->{err}, qr/refusing to overwrite/, '... refuses');
is($t->read_file("$dir/ca.key"), $key_before, '... the key is untouched');
is($t->ca({}, 'init')->{exit}, 2, 'init without --dir: exit 2');
is($t->ca({}, 'init', '--dir', $t->path('x'), '--key', 'dsa')->{exit}, 2,
    'init with an unknown key type: exit 2');

SKIP: {
    skip 'not root: cannot test another user', 2 unless $> == 0;
    my $nobody = getpwnam('nobody');
    skip 'no user nobody', 2 unless defined $nobody;
    my $rc = system('su', 'nobody', '-s', '/bin/sh', '-c',
        "cat $dir/ca.key >/dev/null 2>&1");
    isnt($rc, 0, 'nobody cannot read the CA key');
    chmod 0755, $dir;
    $rc = system('su', 'nobody', '-s', '/bin/sh', '-c',
        "cat $dir/ca.key >/dev/null 2>&1");
    isnt($rc, 0, '... not even with the directory opened up');
    chmod 0700, $dir;
}

# an RSA CA with an encrypted key
my $pdir = $t->path('eca-rsa');
$t->write_file('pass.txt', "correct horse battery\n");
$out = $t->ca('init', '--dir', $pdir, '--key', 'rsa3072',
    '--passphrase-file', $t->path('pass.txt'), '--days', 30);
like($t->read_file("$pdir/ca.key"), qr/BEGIN ENCRYPTED PRIVATE KEY/,
    'with a passphrase the key is encrypted');
like($t->openssl_out('asn1parse', '-in', "$pdir/ca.key"), qr/aes-256-cbc/i,
    '... with AES-256');
like($t->openssl_out('x509', '-in', "$pdir/ca.crt", '-noout', '-text'),
    qr/Public-Key: \(3072 bit\)/, '... an RSA 3072 CA');
$t->add_user('rsa-user');
$r = $t->ca({}, 'issue', 'rsa-user', '--dir', $pdir, '--p12',
    $t->path('r.p12'));
is($r->{exit}, 1, 'issuing without the passphrase fails');
like($r->{err}, qr/passphrase/, '... and says why');
$r = $t->ca({}, 'issue', 'rsa-user', '--dir', $pdir, '--p12',
    $t->path('r.p12'), '--passphrase-file', $t->path('pass.txt'));
is($r->{exit}, 0, '... with it, it works');

# --- user add: the certificate password (the user commands need no CA)
$out = $t->eca('user', 'add', 'alice', '--cost', 12);
like($out, qr/\Auser: alice\ninitial password: \S+\ncertificate password: [A-Za-z0-9]{16}\n--- notice ---\n/,
    'user add: a certificate password and the notice');
is($t->redis_cmd('EXISTS', $t->rkey('enroll:alice')), 1,
    '... stored (hashed) for the enrollment site');
$t->ca('user', 'add', 'bob', '--cost', 12);
is($t->ca({}, 'user', 'reset-password', 'bob', '--dir', $dir)->{exit}, 2,
    'reset-password --dir: exit 2');

# --- issue with a CSR: the fields
my $csr = $t->csr('alice-csr', subject => '/O=Evil/CN=root');
$r = $t->eca({}, 'issue', 'alice', '--csr', $t->path('alice-csr.csr'),
    '--out', $t->path('alice-csr.crt'));
is($r->{exit}, 0, 'issue --csr: exit 0');
my ($serial) = $r->{out} =~ /^serial: ([0-9A-F]+)$/m;
my ($fp) = $r->{out} =~ /^fingerprint: ([0-9a-f]{64})$/m;
is($fp, $t->fingerprint('alice-csr'), '... prints the fingerprint');
my $text = $t->openssl_out('x509', '-in', $t->path('alice-csr.crt'),
    '-noout', '-text', '-nameopt', 'RFC2253');
like($text, qr/Subject: CN=alice,O=Ecodoc Clients$/m,
    'subject: O from init --org, CN = the user, the CSR ignored');
like($text, qr/Issuer: CN=Ecodoc Enroll Test CA,O=Ecodoc Enroll Test$/m,
    'issuer: the CA');
like($text, qr/Extended Key Usage:\s*\n\s*TLS Web Client Authentication\s*\n/,
    'EKU: clientAuth only');
like($text, qr/X509v3 Key Usage: critical\s*\n\s*Digital Signature\s*\n/,
    'KU: digitalSignature, critical');
like($text, qr/Basic Constraints:\s*\n\s*CA:FALSE/, 'CA:FALSE');
like($text, qr/Subject Key Identifier/, 'SKI');
like($text, qr/Authority Key Identifier/, 'AKI');
is(length($serial), 32, 'serial: 128 bits');
like($serial, qr/^[89A-F]/, '... positive with the top bit set');
my $dates = $t->openssl_out('x509', '-in', $t->path('alice-csr.crt'),
    '-noout', '-startdate', '-enddate');
my %d = $dates =~ /^(notBefore|notAfter)=(.*)$/mg;
my $days = (parse_date($d{notAfter}) - parse_date($d{notBefore})) / 86400;
is($days, 397, 'lifetime: 397 days by default');
like($t->openssl_out('verify', '-CAfile', "$dir/ca.crt", '-purpose',
    'sslclient', $t->path('alice-csr.crt')), qr/: OK/,
    'verifies against the CA as a client certificate');

$r = $t->eca({}, 'issue', 'alice', '--csr', $t->path('alice-csr.csr'),
    '--days', 30);
like($r->{out}, qr/BEGIN CERTIFICATE/, 'issue --csr without --out: PEM on stdout');
$t->write_file('short.crt', $r->{out});
%d = $t->openssl_out('x509', '-in', $t->path('short.crt'), '-noout',
    '-startdate', '-enddate') =~ /^(notBefore|notAfter)=(.*)$/mg;
is((parse_date($d{notAfter}) - parse_date($d{notBefore})) / 86400, 30,
    '--days 30');

$t->csr('weak', type => 'rsa1024');
$r = $t->eca({}, 'issue', 'alice', '--csr', $t->path('weak.csr'));
is($r->{exit}, 2, 'an RSA 1024 CSR: exit 2');
like($r->{err}, qr/RSA keys must be at least 2048 bits/, '... the clear message');
$t->write_file('bad.csr', "-----BEGIN CERTIFICATE REQUEST-----\nAA\n");
is($t->eca({}, 'issue', 'alice', '--csr', $t->path('bad.csr'))->{exit}, 2,
    'a malformed CSR: exit 2');
$r = $t->eca({}, 'issue', 'nobody', '--csr', $t->path('alice-csr.csr'));
is($r->{exit}, 1, 'issue for a user not in Redis: exit 1');
like($r->{err}, qr/no such user/, '... says so');
is($t->eca({}, 'issue', 'alice')->{exit}, 2, 'issue without --csr/--p12: exit 2');

# --- issue a PKCS#12
$r = $t->eca({}, 'issue', 'alice', '--p12', $t->path('a.p12'));
is($r->{exit}, 0, 'issue --p12: exit 0');
my ($p12pw) = $r->{out} =~ /^p12 password: (\S+)$/m;
ok(defined $p12pw, '... prints a random password');
is((stat $t->path('a.p12'))[2] & 07777, 0600, '... the file is 0600');
my $info = $t->openssl_out('pkcs12', '-in', $t->path('a.p12'), '-info',
    '-noout', '-passin', "pass:$p12pw");
like($info, qr/PBES2, PBKDF2, AES-256-CBC/, '... AES-256-CBC with PBKDF2');
like($info, qr/MAC: sha256/, '... SHA-256 MAC');
$t->install_p12('a', $t->read_file('a.p12'), $p12pw);

$t->write_file('p12pass', "legacy-pass\n");
$r = $t->eca({}, 'issue', 'alice', '--p12', $t->path('l.p12'), '--legacy',
    '--key', 'rsa2048', '--p12-password-file', $t->path('p12pass'));
is($r->{exit}, 0, 'issue --p12 --legacy --key rsa2048');
unlike($r->{out}, qr/p12 password/, '... the given password is not printed');
$info = $t->openssl_out('pkcs12', '-in', $t->path('l.p12'), '-info',
    '-noout', '-passin', 'pass:legacy-pass');
like($info, qr/TripleDES/, '... 3DES for old Windows');

# --- concurrent issuance keeps the database whole
my @res = $t->parallel(6, sub {
    my ($i, $ready) = @_;
    $ready->();
    my $x = $t->eca({}, 'issue', 'bob', '--p12', $t->path("b$i.p12"),
        '--p12-password-file', $t->path('p12pass'));
    return $x->{exit};
});
is(join(',', @res), '0,0,0,0,0,0', '6 concurrent issuances succeed');
my @lines = grep { !/^#/ } split /\n/, $t->read_file('eca/index.tsv');
is(scalar(grep { /\tbob\t/ } @lines), 6, '... all 6 in the database');
is(scalar @{ $t->redis_cmd('SMEMBERS', $t->rkey('certs:bob')) }, 6,
    '... and in Redis');

# --- certs
$out = $t->eca('certs');
like($out, qr/^SERIAL\s+USER\s+STATE\s+NOT AFTER\s+FINGERPRINT$/m, 'certs: header');
like($out, qr/^$serial\s+alice\s+valid\s+\S+\s+$fp$/m, 'certs: alice valid');
$out = $t->eca('certs', 'alice');
unlike($out, qr/\bbob\b/, 'certs alice: only alice');
is(scalar(() = $out =~ /\balice\b/g), 4, '... her four certificates');

# --- revoke
my $afp = $t->fingerprint('a');
is($t->ca({}, 'revoke', '--dir', $dir)->{exit}, 2, 'revoke without a target: exit 2');
is($t->eca({}, 'revoke', '--serial', 'zz')->{exit}, 2, 'revoke a bad serial: exit 2');
is($t->eca({}, 'revoke', '--serial', 'ABCDEF')->{exit}, 1,
    'revoke an unknown serial: exit 1');
is($t->eca({}, 'revoke', '--fingerprint', $afp, '--reason', 'whatever')->{exit},
    2, 'revoke with an unknown reason: exit 2');
$out = $t->eca('revoke', '--fingerprint', $afp, '--reason', 'superseded');
like($out, qr/^revoked: $afp alice$/m, 'revoke --fingerprint');
is($t->redis_cmd('GET', $t->rkey("revoked:$afp")), 'superseded', '... in Redis');
$out = $t->eca('revoke', '--serial', lc(join(':', $serial =~ /(..)/g)));
like($out, qr/^revoked: $fp alice$/m, 'revoke --serial in lower case with colons');
is($t->redis_cmd('EXISTS', $t->rkey('enroll:alice')), 1,
    "revoke --serial/--fingerprint: alice's certificate password stays");
is($t->redis_cmd('EXISTS', $t->rkey('enroll:bob')), 1,
    "bob's certificate password from user add, outstanding");
$out = $t->eca('revoke', '--user', 'bob', '--reason', 'cessationOfOperation');
is(scalar(() = $out =~ /^revoked: \S+ bob$/mg), 6, 'revoke --user: all 6 of bob');
like($out, qr/^certificate password of bob cancelled$/m,
    '... and says his certificate password is cancelled');
is($t->redis_cmd('EXISTS', $t->rkey('enroll:bob')), 0, '... gone from Redis');
ok(grep({ $_->{event} eq 'enroll_cancelled' && $_->{user} eq 'bob' }
        $t->audit), '... audited as enroll_cancelled');
like($t->eca('certs', 'bob'), qr/\A[^\n]*\n(?:\S+\s+bob\s+revoked\s[^\n]*\n){6}\z/,
    'certs bob: all revoked');
is($t->eca({}, 'revoke', '--user', 'bob')->{exit}, 1,
    'revoke --user with nothing left: exit 1');

# a bound certificate from elsewhere, by fingerprint: the gate refuses it
my $u = $t->ready_user('carol');
$r = $t->eca({}, 'revoke', '--fingerprint', $u->{fp});
is($r->{exit}, 0, 'revoke a fingerprint this CA did not issue: exit 0');
like($r->{err}, qr/not in the CA database/, '... with a warning');
is($t->http(GET => '/x', cert => $u->{cert}, cookie => $u->{cookie})->{status},
    403, '... and the gate refuses it');

# --- crl
my $crl = $t->openssl_out('crl', '-in', "$dir/crl.pem", '-noout', '-text');
like($crl, qr/Serial Number: $serial/, 'the CRL lists the revoked serial');
like($crl, qr/Superseded/, '... and reasons');
my ($n1) = $crl =~ /CRL Number:\s*\n\s*(\d+)/;
$out = $t->eca('crl', '--days', 30);
like($out, qr/crl\.pem/, 'crl --days 30');
$crl = $t->openssl_out('crl', '-in', "$dir/crl.pem", '-noout', '-text');
my ($n2) = $crl =~ /CRL Number:\s*\n\s*(\d+)/;
cmp_ok($n2, '>', $n1, '... a higher CRL number');
my ($last) = $crl =~ /Last Update: (.*)/;
my ($next) = $crl =~ /Next Update: (.*)/;
is((parse_date($next) - parse_date($last)) / 86400, 30, '... next update in 30 days');
is((stat "$dir/crl.pem")[2] & 07777, 0644, 'crl.pem is readable (for nginx)');

# --- audit: issuance and revocation
my @ev = map { $_->{event} } $t->audit;
ok(grep({ $_ eq 'certificate_issued' } @ev), 'audit: certificate_issued');
ok(grep({ $_ eq 'revoked' } @ev), 'audit: revoked');
ok(grep({ $_ eq 'enroll_code' } @ev), 'audit: enroll_code');

done_testing();

# "Nov 24 09:37:22 2026 GMT" -> unix time
sub parse_date {
    my ($s) = @_;
    my %m;
    @m{qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)} = 0 .. 11;
    my ($mon, $day, $h, $mi, $sec, $y) =
        $s =~ /^(\w{3})\s+(\d+) (\d+):(\d+):(\d+) (\d{4})/ or return 0;
    require Time::Local;
    return Time::Local::timegm($sec, $mi, $h, $day, $m{$mon}, $y);
}
