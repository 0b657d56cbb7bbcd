#!/usr/bin/perl

# Certificate passwords (認証情報パスワード) at the enrollment site: wrong,
# reused, expired, replaced; the 5-try limit; two redemptions at once
# yield one certificate; a weak CSR is refused without using the password.

use strict;
use warnings;
use utf8;

use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(server => $t->enroll_server_conf);
$t->enroll_start();

sub add {
    my ($u, @o) = @_;
    my $out = $t->eca('user', 'add', $u, '--cost', 12, @o);
    my ($code) = $out =~ /^certificate password: (\S+)$/m;
    return $code;
}

sub new_code {
    my ($u, @o) = @_;
    my $out = $t->ca('enroll-code', $u, '--cost', 12, @o);
    like($out, qr/\Auser: \Q$u\E\ncertificate password: \S+\nexpires: \S+\n\z/,
        "enroll-code $u: output");
    my ($code) = $out =~ /^certificate password: (\S+)$/m;
    return $code;
}

sub issued { scalar @{ $t->redis_cmd('SMEMBERS', $t->rkey("certs:$_[0]")) || [] } }

my $carol = add('carol');

# --- wrong, unknown, malformed, no csrf
my ($jar, $r) = $t->enroll_step1('carol', 'not-the-password', lang => 'en');
is($r->{status}, 401, 'wrong certificate password: 401');
like($r->{text}, qr/The user ID or certificate password is incorrect\./,
    '... says so');
ok(!exists $jar->{'__Host-enroll'}, '... no session');
is($t->redis_cmd('HGET', $t->rkey('enroll:carol'), 'tries'), '1',
    '... one try counted');
ok(grep({ $_->{event} eq 'enroll_failed' && $_->{user} eq 'carol' } $t->audit),
    '... audited');
($jar, $r) = $t->enroll_step1('nobody', $carol, lang => 'en');
is($r->{status}, 401, 'unknown user: the same 401');
($jar, $r) = $t->enroll_step1('bad user', $carol, lang => 'en');
is($r->{status}, 400, 'malformed user ID: 400');
$r = $t->http(POST => '/enroll/step1',
    form => [user => 'carol', password => $carol]);
is($r->{status}, 403, 'STEP1 without the csrf token: 403');
$r = $t->http(POST => '/enroll/step1', cookies => { '__Host-enroll-csrf' => 'a' x 43 },
    form => [user => 'carol', password => $carol, csrf => 'b' x 43]);
is($r->{status}, 403, 'STEP1 with a wrong csrf token: 403');

# a right password gives back its try: only wrong ones count
($jar, $r) = $t->enroll_step1('carol', $carol);
is($r->{status}, 303, 'the right password: 303');
is($t->redis_cmd('HGET', $t->rkey('enroll:carol'), 'tries'), '1',
    '... the count of wrong tries unchanged');

# --- a weak CSR: refused, the password not used
my $weak = $t->csr('weak', type => 'rsa1024');
my $e = $t->enroll('carol', $carol, csr => $weak, lang => 'en');
is($e->{step3}{status}, 400, 'STEP3 with an RSA 1024 CSR: 400');
like($e->{step3}{text}, qr/RSA keys must be at least 2048 bits/,
    '... with the clear message');
is(issued('carol'), 0, '... nothing issued');
is($t->redis_cmd('HGET', $t->rkey('enroll:carol'), 'used'), '0',
    '... the certificate password is not used');
$r = $t->enroll_post('/enroll/step3', $e->{jar},
    [mode => 'csr', csr => "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"],
    csrf => $e->{csrf}, lang => 'en');
is($r->{status}, 400, 'STEP3 with garbage for a CSR: 400');
$r = $t->enroll_post('/enroll/step3', $e->{jar},
    [mode => 'p12', p12pw => 'short', p12pw2 => 'short'],
    csrf => $e->{csrf}, lang => 'en');
is($r->{status}, 400, 'STEP3 with a 5-character PKCS#12 password: 400');
like($r->{text}, qr/at least|8 to 128/, '... says why');
$r = $t->enroll_post('/enroll/step3', $e->{jar},
    [mode => 'p12', p12pw => 'long enough 1', p12pw2 => 'long enough 2'],
    csrf => $e->{csrf}, lang => 'en');
is($r->{status}, 400, 'STEP3 with two different passwords: 400');
$r = $t->enroll_post('/enroll/step3', $e->{jar},
    [mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough'],
    csrf => 'x' x 43, lang => 'en');
is($r->{status}, 403, 'STEP3 with a wrong csrf token: 403');
is(issued('carol'), 0, 'still nothing issued');

# the same session goes on with a good key: RSA 2048 from STEP2
$r = $t->enroll_post('/enroll/step2', $e->{jar}, [key => 'rsa2048'],
    csrf => $e->{csrf});
is($r->{status}, 303, 'STEP2 again: RSA 2048');
$r = $t->enroll_post('/enroll/step3', $e->{jar},
    [mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough'],
    csrf => $e->{csrf});
is($r->{status}, 303, 'then the PKCS#12: 303 to the result page');
$r = $t->enroll_get('/enroll/certificate.p12', $e->{jar});
is(hdr($r, 'content-type'), 'application/x-pkcs12', '... which has the file');
$t->install_p12('carol', $r->{body}, 'long enough');
like($t->openssl_out('x509', '-in', $t->path('carol.crt'), '-noout',
    '-text'), qr/Public-Key: \(2048 bit\)/, '... an RSA 2048 key');
is(issued('carol'), 1, 'one certificate issued');

# --- reused
($jar, $r) = $t->enroll_step1('carol', $carol, lang => 'en');
is($r->{status}, 403, 'the used certificate password again: 403');
like($r->{text}, qr/already been used/, '... says it is used');

# --- replaced: enroll-code; the previous one stops working
my $carol2 = new_code('carol');
isnt($carol2, $carol, 'a new certificate password');
($jar, $r) = $t->enroll_step1('carol', $carol);
is($r->{status}, 401, 'the previous one: 401');
my $old = new_code('carol');
my ($old_jar) = $t->enroll_step1('carol', $old);
my $newest = new_code('carol');
$r = $t->http(GET => '/enroll/step3', cookies => $old_jar);
my $tok = form_token($r);
$r = $t->enroll_post('/enroll/step3', $old_jar,
    [mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough'],
    csrf => $tok, lang => 'en');
is($r->{status}, 403, 'a session opened with a replaced password cannot issue');
is(issued('carol'), 1, '... nothing issued');
my $res = $t->ca({}, 'enroll-code', 'nobody-here', '--cost', 12);
is($res->{exit}, 1, 'enroll-code for an unknown user: exit 1');
is($t->ca({}, 'enroll-code', 'bad user')->{exit}, 2,
    'enroll-code with a bad user ID: exit 2');

# --- expired
my $dave = add('dave');
my $dave0 = new_code('dave', '--days', 0);
($jar, $r) = $t->enroll_step1('dave', $dave0, lang => 'en');
is($r->{status}, 403, 'an expired certificate password (--days 0): 403');
like($r->{text}, qr/has expired/, '... says it expired');
my $dave1 = new_code('dave');
($jar, $r) = $t->enroll_step1('dave', $dave1);
is($r->{status}, 303, 'a fresh one: STEP1 passes');
$t->redis_cmd('HSET', $t->rkey('enroll:dave'), 'expires', time - 1);
$r = $t->http(GET => '/enroll/step3', cookies => $jar);
$r = $t->enroll_post('/enroll/step3', $jar,
    [mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough'],
    csrf => form_token($r), lang => 'en');
is($r->{status}, 403, 'expired between STEP1 and STEP3: 403');
like($r->{text}, qr/has expired/, '... says it expired');
is(issued('dave'), 0, '... nothing issued');

# --- the session: gone means back to STEP1
my $eve = add('eve');
($jar, $r) = $t->enroll_step1('eve', $eve);
$t->redis_cmd('DEL', $t->rkey('enroll_sess:'
    . sha256_hex($jar->{'__Host-enroll'})));
$r = $t->http(GET => '/enroll/step2', cookies => $jar);
is($r->{status}, 303, 'STEP2 without a live session: 303');
is($t->location_path($r), '/enroll/', '... back to STEP1');
$r = $t->http(POST => '/enroll/step3', cookies => $jar,
    form => [mode => 'p12', csrf => 'x']);
is($r->{status}, 403, 'STEP3 POST without a live session: 403');
$r = $t->http(GET => '/enroll/step3', cookies => { '__Host-enroll' => 'forged' });
is($r->{status}, 303, 'a forged session cookie: back to STEP1');

# --- two browsers on one certificate password: once one has its
# certificate, the other's STEP3 is refused before any key is made for it
# (an RSA 4096 key takes a second or more of the enrollment server's CPU)
my $hana = add('hana');
my $one = $t->enroll('hana', $hana, stop_before_step3 => 1);
my $two = $t->enroll('hana', $hana, key => 'rsa4096', stop_before_step3 => 1);
is($two->{step2}{status}, 303, 'a second STEP1-2 on the same password');
my @p12 = (mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough');
$r = $t->enroll_post('/enroll/step3', $one->{jar}, \@p12, csrf => $one->{csrf});
is($r->{status}, 303, 'the first gets its certificate');
my $t0 = time;
for my $i (1 .. 3) {
    $r = $t->enroll_post('/enroll/step3', $two->{jar}, \@p12,
        csrf => $two->{csrf}, lang => 'en');
    is($r->{status}, 403, "the second's STEP3 ($i): 403");
}
like($r->{text}, qr/already been used/i, '... the password is used');
cmp_ok(time - $t0, '<', 1, '... answered without making RSA 4096 keys');
is(issued('hana'), 1, '... one certificate issued in all');

# --- revoke --user: the outstanding certificate password goes too, and an
# enrollment already past STEP1 on it cannot issue
my $ivan = add('ivan');
is($t->enroll('ivan', $ivan)->{p12}{status}, 200, 'ivan has a certificate');
my $ivan2 = new_code('ivan');
my $open = $t->enroll('ivan', $ivan2, stop_before_step3 => 1);
is($open->{step2}{status}, 303, 'a second enrollment, past STEP2');
like($t->eca('revoke', '--user', 'ivan'),
    qr/^certificate password of ivan cancelled$/m,
    'revoke --user ivan: his certificate password cancelled');
$r = $t->enroll_post('/enroll/step3', $open->{jar}, \@p12,
    csrf => $open->{csrf});
is($r->{status}, 403, '... the open enrollment cannot issue');
is(issued('ivan'), 1, '... still only the first certificate');

# --- the 5-try limit
my $frank = add('frank');
for my $i (1 .. 4) {
    ($jar, $r) = $t->enroll_step1('frank', "wrong-$i");
    is($r->{status}, 401, "wrong try $i: 401");
}
($jar, $r) = $t->enroll_step1('frank', 'wrong-5', lang => 'en');
is($r->{status}, 403, 'the 5th wrong try: 403 locked');
like($r->{text}, qr/locked/, '... says locked');
($jar, $r) = $t->enroll_step1('frank', $frank, lang => 'en');
is($r->{status}, 403, 'then even the right password: 403');
is($t->redis_cmd('HGET', $t->rkey('enroll:frank'), 'tries'), '5',
    '... and it is not even checked (no sixth try counted)');
ok(grep({ $_->{event} eq 'enroll_locked' && $_->{user} eq 'frank' } $t->audit),
    'audit: enroll_locked');
my $frank2 = new_code('frank');
($jar, $r) = $t->enroll_step1('frank', $frank2);
is($r->{status}, 303, 'a new certificate password unlocks');

# the limit holds under concurrent guesses
my $gina = add('gina');
my @got = $t->parallel(8, sub {
    my ($i, $ready) = @_;
    $ready->();
    my ($j, $x) = $t->enroll_step1('gina', "guess-$i");
    return $x->{status};
});
is(scalar(grep { $_ eq '401' || $_ eq '403' } @got), 8,
    '8 concurrent wrong guesses: all refused');
cmp_ok($t->redis_cmd('HGET', $t->rkey('enroll:gina'), 'tries'), '<=', 5,
    '... at most 5 checked');
($jar, $r) = $t->enroll_step1('gina', $gina);
is($r->{status}, 403, '... and the user is locked');

# --- two redemptions of the same password at once: one certificate
my $hank = add('hank');
my (@jars, @tokens);
for (1 .. 2) {
    my ($j, $x) = $t->enroll_step1('hank', $hank);
    is($x->{status}, 303, "session $_ for hank");
    my $g = $t->http(GET => '/enroll/step3', cookies => $j);
    push @jars, $j;
    push @tokens, form_token($g);
}
@got = $t->parallel(2, sub {
    my ($i, $ready) = @_;
    $ready->();
    my $x = $t->enroll_post('/enroll/step3', $jars[$i],
        [mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough'],
        csrf => $tokens[$i]);
    $x = $t->enroll_get('/enroll/certificate.p12', $jars[$i])
        if $x->{status} == 303;
    return $x->{status} . ' ' . (hdr($x, 'content-type') // '');
});
is(scalar(grep { /^200 application\/x-pkcs12/ } @got), 1,
    'two concurrent redemptions: exactly one PKCS#12') or diag("@got");
is(scalar(grep { /^403 / } @got), 1, '... the other refused');
is(issued('hank'), 1, '... one certificate in Redis');
my @rows = grep { /\bhank\b/ } split /\n/, $t->eca('certs', 'hank');
is(scalar @rows, 1, '... and one in the CA database');

# --- an issuance that fails before anything is delivered gives the
# certificate password back
my $ivy = add('ivy');
my $ivy_res = $t->enroll('ivy', $ivy, stop_before_step3 => 1);
is($ivy_res->{step2}{status}, 303, 'ivy: STEP1 and STEP2');
my $db = $t->eca_dir . '/index.tsv';
rename $db, "$db.away" or die "rename: $!";
$r = $t->enroll_post('/enroll/step3', $ivy_res->{jar},
    [mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough'],
    csrf => $ivy_res->{csrf}, lang => 'en');
rename "$db.away", $db or die "rename: $!";
is($r->{status}, 503, 'the CA database missing at STEP3: 503');
is($t->redis_cmd('HGET', $t->rkey('enroll:ivy'), 'used'), '0',
    '... the certificate password is usable again');
ok(grep({ $_->{event} eq 'enroll_failed' && $_->{user} eq 'ivy'
          && $_->{detail} =~ /usable again/ } $t->audit),
    '... after it had been used: given back, and audited');
is(issued('ivy'), 0, '... nothing issued');
$r = $t->enroll_post('/enroll/step3', $ivy_res->{jar},
    [mode => 'p12', p12pw => 'long enough', p12pw2 => 'long enough'],
    csrf => $ivy_res->{csrf});
$r = $t->enroll_get('/enroll/certificate.p12', $ivy_res->{jar})
    if $r->{status} == 303;
like($r->{status} . ' ' . (hdr($r, 'content-type') // ''),
    qr{^200 application/x-pkcs12}, 'the database back: the same session gets its certificate');
is(issued('ivy'), 1, '... exactly one');

is(scalar $t->crashes, 0, 'no nginx worker crashed');

done_testing();
