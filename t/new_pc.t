#!/usr/bin/perl

# A new PC, administrator-driven (docs/behaviour.md, "A certificate's
# life"): `ecodoc-ca enroll-code U --replace` hands out a certificate
# password whose certificate, once signed up with the user's password,
# takes over the binding and revokes the old certificate at that moment,
# not before. Logins with the old certificate racing the takeover leave no
# session of it. A replace certificate cannot sign up as another user;
# without --replace a second certificate still cannot sign up.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(server => $t->enroll_server_conf);
$t->enroll_start('--renewal', 'on');

sub code {
    my ($u, @opt) = @_;
    my $out = $t->ca('enroll-code', $u, '--cost', 12, @opt);
    my ($c) = $out =~ /^certificate password: (\S+)$/m
        or die "enroll-code $u: $out";
    return wantarray ? ($c, $out) : $c;
}

# STEP1-3 with a certificate password; the PKCS#12 installed as NAME
sub new_cert {
    my ($u, $code, $name) = @_;
    my $e = $t->enroll($u, $code, p12_password => 'new-pc-p12');
    die "enroll $u: " . ($e->{step3} // $e->{step1})->{status}
        unless ($e->{p12}{status} // 0) == 200;
    $t->install_p12($name, $e->{p12}{body}, 'new-pc-p12');
    return $t->fingerprint($name);
}

sub docs {
    my ($cert, $cookie) = @_;
    return $t->http(GET => '/docs', cert => $cert, cookie => $cookie)->{status};
}

# the sessions in Redis made with certificate fp
sub sessions_of {
    my ($fp) = @_;
    my @keys = @{ $t->redis_cmd('KEYS', $t->rkey('sess:*')) || [] };
    return scalar grep { ($t->redis_cmd('GET', $_) // '') =~ /^\Q$fp\E / }
        @keys;
}

# --- the path end to end
my $nina = $t->ready_user('nina');
my ($code, $out) = code('nina', '--replace');
like($out, qr/^replaces: the certificate bound to nina when the new one signs up$/m,
    'enroll-code --replace says what it does');
is($t->redis_cmd('HGET', $t->rkey('enroll:nina'), 'replace'), '1',
    '... and marks the certificate password');
ok(grep({ $_->{event} eq 'enroll_code' && $_->{user} eq 'nina'
          && $_->{detail} =~ /replaces the bound certificate/ } $t->audit),
    '... audited');
is(docs($nina->{cert}, $nina->{cookie}), 200, 'the old PC works meanwhile');

my $pc2 = new_cert('nina', $code, 'nina-pc2');
is($t->redis_cmd('HGET', $t->rkey("certinfo:$pc2"), 'replaces'), '*',
    'the new PC\'s certificate is to take over');
is(docs($nina->{cert}, $nina->{cookie}), 200,
    'the old PC still works after the new certificate is issued');
my $r = $t->http(GET => '/docs', cert => 'nina-pc2');
is($r->{status}, 303, 'the new PC: 303');
is($t->location_path($r), '/ecodoc/signup', '... to the sign-up');
is($t->signup('nina-pc2', 'nina', 'wrong-password-1')->{status}, 401,
    'its sign-up with a wrong password: 401');
is(docs($nina->{cert}, $nina->{cookie}), 200, '... the old PC still works');

# the takeover, with logins of the old PC racing it
my @got = $t->parallel(4, sub {
    my ($i, $ready) = @_;
    $ready->();
    return $t->signup('nina-pc2', 'nina', $nina->{password})->{status}
        if $i == 0;
    select(undef, undef, undef, 0.05 * $i);
    return $t->login($nina->{cert}, 'nina', $nina->{password})->{status};
});
is($got[0], 200, 'the new PC signs up with the password: 200');
is(sessions_of($nina->{fp}), 0,
    "logins of the old PC racing it ($got[1] $got[2] $got[3]): no session of the old certificate left");
is($t->redis_cmd('GET', $t->rkey("revoked:$nina->{fp}")), 'superseded',
    'the old certificate is revoked (superseded)');
is_deeply($t->redis_cmd('SMEMBERS', $t->rkey('user:nina:certs')), [$pc2],
    '... the new one bound in its place');
ok(grep({ $_->{event} eq 'new_pc_taken_over' && $_->{fp} eq $pc2
          && $_->{detail} =~ /\Q$nina->{fp}\E/ } $t->audit),
    'audit: new_pc_taken_over names the old certificate');
is(docs($nina->{cert}, $nina->{cookie}), 403, 'the old PC: 403');
is($t->login($nina->{cert}, 'nina', $nina->{password})->{status}, 403,
    '... its login too');
$r = $t->login('nina-pc2', 'nina', $nina->{password});
is($r->{status}, 303, 'the new PC logs in');
my $c2 = cookie($r);
is(docs('nina-pc2', $c2), 200, '... and reaches the backend');

# --- without --replace: unchanged, the second certificate cannot sign up
my $pc3 = new_cert('nina', scalar code('nina'), 'nina-pc3');
$r = $t->signup('nina-pc3', 'nina', $nina->{password}, lang => 'en');
is($r->{status}, 409, 'enroll-code without --replace: the sign-up is 409');
like($r->{text}, qr/already been signed up with another certificate/,
    '... as before');
is(docs('nina-pc2', $c2), 200, '... and the bound PC goes on');

# --- a replace certificate is nina's only
my $otto = $t->add_user('otto');
my $nina_code = scalar code('nina', '--replace');
my (undef, $s1) = $t->enroll_step1('otto', $nina_code);
is($s1->{status}, 401, "nina's replace code typed for otto: 401");
my $pc4 = new_cert('nina', $nina_code, 'nina-pc4');
$r = $t->signup('nina-pc4', 'otto', $otto, lang => 'en');
is($r->{status}, 403, "nina's replace certificate signing up as otto: 403");
like($r->{text}, qr/not issued for this user ID/, '... not issued for otto');
is($t->redis_cmd('EXISTS', $t->rkey('user:otto:certs')), 0,
    '... otto has nothing bound');
is(docs('nina-pc2', $c2), 200, "... nina's PC goes on");

# --- a renewal and a new PC at once: the first to sign up takes over; a
# renewal's certificate goes with the certificate it renewed
my $jar = { $Ecodoc::Test::COOKIE => $c2 };
my $g = $t->enroll_get('/enroll/renew', $jar, cert => 'nina-pc2');
$r = $t->enroll_post('/enroll/renew', $jar, [password => $nina->{password}],
    csrf => form_token($g), cert => 'nina-pc2');
is($r->{status}, 303, 'nina renews the new PC\'s certificate');
my $e = $t->enroll('nina', undef, jar => $jar, p12_password => 'new-pc-p12');
$t->install_p12('nina-renewed', $e->{p12}{body}, 'new-pc-p12');
my $renewed = $t->fingerprint('nina-renewed');
is($t->signup('nina-pc4', 'nina', $nina->{password})->{status}, 200,
    'the pending new PC (pc4) signs up first: 200');
ok($t->redis_cmd('EXISTS', $t->rkey("revoked:$pc2")),
    '... pc2 is revoked');
ok($t->redis_cmd('EXISTS', $t->rkey("revoked:$renewed")),
    '... and the renewal of pc2 with it');
is($t->signup('nina-renewed', 'nina', $nina->{password})->{status}, 403,
    '... which cannot sign up');
$r = $t->login('nina-pc4', 'nina', $nina->{password});
is(docs('nina-pc4', cookie($r)), 200, 'pc4 is the one in use');

# --- a replace code for a user who never signed up: a plain sign-up
my $pia = $t->add_user('pia');
my $pia1 = new_cert('pia', scalar code('pia', '--replace'), 'pia-1');
is($t->signup('pia-1', 'pia', $pia)->{status}, 200,
    'a replace certificate of a user without one signs up as usual');
ok(!grep({ $_->{event} eq 'new_pc_taken_over' && $_->{user} eq 'pia' }
    $t->audit), '... nothing taken over');

# --- certs --expiring: the certificates in use, soonest first
$out = $t->eca('certs', '--expiring', 400);
like($out, qr/^USER\s+NOT AFTER\s+DAYS LEFT\s+STATE\s+FINGERPRINT$/m,
    'certs --expiring: the columns');
like($out, qr/^nina\s+\S+\s+39[67]\s+in-use\s+\Q$pc4\E$/m,
    '... nina\'s pc4, in use');
unlike($out, qr/\Q$pc2\E|\Q$renewed\E/,
    '... not the certificates the gate revoked');
like($out, qr/^nina\s+\S+\s+\d+\s+unused\s+\Q$pc3\E$/m,
    '... and pc3, issued but not signed up');
is($t->eca('certs', '--expiring', 10), "USER                  NOT AFTER             DAYS LEFT  STATE     FINGERPRINT\n",
    'certs --expiring 10: none within 10 days');
is($t->eca({}, 'certs', '--expiring', 'soon')->{exit}, 2,
    'certs --expiring soon: usage error');

# --- crl: the revocations the takeovers made at the gate reach the CA
# database and the CRL
like($t->eca('certs', 'nina'), qr/^\S+\s+nina\s+valid\s+\S+\s+\Q$pc2\E$/m,
    'before crl: pc2, revoked at the gate, is still valid in the CA database');
like($t->eca('crl'), qr/^2 revocations at the gate added to the CA database$/m,
    'crl: adds the two revocations made at the gate (pc2 and its renewal)');
like($t->eca('certs', 'nina'), qr/^\S+\s+nina\s+revoked\s+\S+\s+\Q$pc2\E$/m,
    '... pc2 is revoked in the CA database');
my ($serial2) = $t->eca('certs', 'nina') =~ /^(\S+)\s+nina\s+revoked\s+\S+\s+\Q$pc2\E$/m;
my $crl = $t->openssl_out('crl', '-in', $t->eca_dir . '/crl.pem', '-noout', '-text');
like($crl, qr/Serial Number: \Q$serial2\E\s+Revocation Date: [^\n]+\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Superseded/i,
    '... and in the CRL, superseded');
unlike($t->eca('crl'), qr/revocations? at the gate/, 'crl again: nothing more to add');

is(scalar $t->crashes, 0, 'no nginx worker crashed');

done_testing();
