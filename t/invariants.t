#!/usr/bin/perl

# The guarantees while things happen at once: a revocation, reset or
# deletion that returns while a login or sign-up is still checking its
# password leaves no session and no binding behind (lua/finish.lua checks
# again in the step that grants); an issuance whose enrollment is
# cancelled meanwhile is revoked as it is recorded; a flood of refusals is
# counted, and cannot push a security event out of the audit.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(server => $t->enroll_server_conf);
$t->enroll_start();

# a slow hash (scrypt 2^17): the login is still checking when the
# administrator's command runs and returns
my $COST = 17;

sub slow_user {
    my ($u) = @_;
    $t->cert($u);
    my $pw = $t->add_user($u, cost => $COST);
    is($t->signup($u, $u, $pw)->{status}, 200, "$u signs up");
    return $pw;
}

# runs $page (a sub making the request) and, once its password check has
# reserved its slot in Redis, $admin; the page's answer and when the
# command returned (and when the page's request was sent)
sub race {
    my ($user, $page, $admin) = @_;
    my @res = $t->parallel(2, sub {
        my ($i, $ready) = @_;
        $ready->();
        if ($i == 0) {
            my $r = $page->();
            return join ' ', $r->{status}, cookie($r) // '-';
        }
        my $key = $t->rkey("user:$user:pending");
        my $deadline = time + 20;
        sleep 0.002 until time > $deadline
            || $t->redis_cmd('ZCARD', $key) > 0;
        return 'no check seen' if time > $deadline;
        $admin->();
        return sprintf '%.6f', time;
    }, timeout => 60);
    return @res;
}

sub sessions_of {
    my ($user) = @_;
    return scalar @{ $t->redis_cmd('SMEMBERS',
        $t->rkey("user:$user:sessions")) || [] };
}

sub live_sessions_of_cert {
    my ($fp) = @_;
    my $n = 0;
    for my $k (@{ $t->redis_cmd('KEYS', $t->rkey('sess:*')) || [] }) {
        my $v = $t->redis_cmd('GET', $k) // next;
        $n++ if (split / /, $v)[0] eq $fp;
    }
    return $n;
}

# --- revoke --fingerprint while a login checks the password
my $pw = slow_user('alice');
my $afp = $t->fingerprint('alice');
my ($login, $done) = race('alice',
    sub { $t->login('alice', 'alice', $pw, lang => 'en') },
    sub { $t->eca('revoke', '--fingerprint', $afp) });
like($done, qr/^\d/, 'revoke ran while the login was checking');
like($login, qr/^403 /, 'the login finishing after the revocation: 403')
    or diag($login);
is(live_sessions_of_cert($afp), 0, '... no session for the revoked certificate');
is(sessions_of('alice'), 0, '... none for alice');
my ($c) = $login =~ / (\S+)$/;
isnt(backend_user($t->http(GET => '/', cert => 'alice', cookie => $c)),
    'alice', '... and nothing reaches the backend as alice');

# --- revoke --user while a login checks the password
$pw = slow_user('bob');
($login, $done) = race('bob',
    sub { $t->login('bob', 'bob', $pw) },
    sub { $t->eca('revoke', '--user', 'bob') });
like($login, qr/^403 /, 'revoke --user racing a login: 403') or diag($login);
is(live_sessions_of_cert($t->fingerprint('bob')), 0, '... no session');
ok(!$t->redis_cmd('EXISTS', $t->rkey('cert:' . $t->fingerprint('bob'))),
    '... no binding');

# --- a sign-up racing the revocation of its certificate
$t->cert('carol');
my $cpw = $t->add_user('carol', cost => $COST);
my $cfp = $t->fingerprint('carol');
my ($signup) = race('carol',
    sub { $t->signup('carol', 'carol', $cpw) },
    sub { $t->eca('revoke', '--fingerprint', $cfp) });
like($signup, qr/^403 /, 'a sign-up finishing after the revocation: 403')
    or diag($signup);
ok(!$t->redis_cmd('EXISTS', $t->rkey("cert:$cfp")),
    '... the revoked certificate is not bound');
is($t->redis_cmd('SCARD', $t->rkey('user:carol:certs')), 0,
    '... carol has no certificate');

# --- a reset and a deletion racing logins (the reset's new initial
# password hashed cheaply, so that the command returns while the login's
# 2^17 check still runs)
$pw = slow_user('dave');
($login) = race('dave', sub { $t->login('dave', 'dave', $pw) },
    sub { $t->ca('user', 'reset-password', 'dave', '--cost', 10) });
unlike($login, qr/^303 /, 'a login finishing after a reset: no session')
    or diag($login);
is(sessions_of('dave'), 0, '... none in Redis');

$pw = slow_user('erin');
($login) = race('erin', sub { $t->login('erin', 'erin', $pw) },
    sub { $t->ca('user', 'delete', 'erin') });
unlike($login, qr/^303 /, 'a login finishing after a deletion: no session')
    or diag($login);
is(live_sessions_of_cert($t->fingerprint('erin')), 0, '... none in Redis');

# --- revoke --user while the enrollment site issues a certificate (RSA
# 4096) on a certificate password it has just redeemed: whether the
# revocation lands before the issuance is recorded (lua/cert_record.lua
# then revokes it; t/lua.t forces that order) or after it, the
# certificate can never sign up
my $out = $t->eca('user', 'add', 'gina', '--cost', 12);
my ($code) = $out =~ /^certificate password: (\S+)$/m;
my $open = $t->enroll('gina', $code, key => 'rsa4096', stop_before_step3 => 1);
is($open->{step2}{status}, 303, 'gina is past STEP2 (RSA 4096)');
my @res = $t->parallel(2, sub {
    my ($i, $ready) = @_;
    $ready->();
    if ($i == 0) {
        my $r = $t->enroll_post('/enroll/step3', $open->{jar},
            [mode => 'p12', p12pw => 'p12-secret', p12pw2 => 'p12-secret'],
            csrf => $open->{csrf}, timeout => 60);
        return $r->{status} unless $r->{status} == 303;
        # issued: the result page's download
        $r = $t->enroll_get('/enroll/certificate.p12', $open->{jar});
        $t->write_file('gina.p12.got', $r->{body}) if $r->{status} == 200;
        return $r->{status};
    }
    my $deadline = time + 20;
    sleep 0.002 until time > $deadline
        || ($t->redis_cmd('HGET', $t->rkey('enroll:gina'), 'used') // '')
           eq '1';
    return 'not redeemed' if time > $deadline;
    $t->eca('revoke', '--user', 'gina');
    return 'revoked';
}, timeout => 90);
is($res[1], 'revoked', 'revoke --user ran once the password was redeemed');
like($res[0], qr/^(200|503)\z/, "... STEP3: $res[0]");
if ($res[0] == 200) {
    $t->install_p12('gina', $t->read_file('gina.p12.got'), 'p12-secret');
    is($t->signup('gina', 'gina', 'whatever')->{status}, 403,
        '... the certificate it delivered cannot sign up: 403');
}
my @issued = @{ $t->redis_cmd('SMEMBERS', $t->rkey('certs:gina')) || [] };
is(scalar(grep { !$t->redis_cmd('EXISTS', $t->rkey("revoked:$_")) } @issued),
    0, '... every certificate issued to gina is revoked ('
       . scalar(@issued) . ' issued)');

# --- the audit: every event above is there
my %ev;
$ev{"$_->{event} $_->{user}"}++, $ev{"$_->{event} $_->{fp}"}++ for $t->audit;
ok($ev{"revoked alice"}, 'audit: alice revoked');
ok($ev{"revoked bob"}, 'audit: bob revoked');
ok($ev{"revoked $cfp"}, 'audit: carol\'s certificate revoked');
ok($ev{"password_reset dave"}, 'audit: dave reset');
ok($ev{"user_deleted erin"}, 'audit: erin deleted');
ok(!$ev{"login alice"} && !$ev{"login bob"}, 'audit: no login of the revoked');

# --- a flood of refusals: counted per certificate, the audit untouched
my $f = $t->ready_user('frank');
$t->cert('mallory', cn => 'mallory');
my $len = $t->redis_cmd('XLEN', $t->rkey('audit'));
my $get = $t->http(GET => '/ecodoc/login', cert => 'mallory');
my $token = form_token($get) // '';
my %jar = %{ cookies($get) };
my $N = 300;
my $body = form_body(user => 'frank', password => 'x', csrf => $token);
my $cookie = join '; ', map { "$_=$jar{$_}" } sort keys %jar;
my $one = "POST /ecodoc/login HTTP/1.1\r\nHost: localhost\r\n"
    . "Content-Type: application/x-www-form-urlencoded\r\n"
    . "Cookie: $cookie\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
my $s = IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
    SSL_verify_mode => 0, SSL_cert_file => $t->path('mallory.crt'),
    SSL_key_file => $t->path('mallory.key'), Timeout => 30)
    or die "connect: $IO::Socket::SSL::SSL_ERROR";
my $answers = 0;
for my $i (1 .. $N) {
    print {$s} $one;
    # read one response: head, then Content-Length bytes
    my $head = '';
    while ($head !~ /\r\n\r\n\z/) {
        my $n = sysread($s, my $ch, 1) or last;
        $head .= $ch;
    }
    my ($cl) = $head =~ /^Content-Length:\s*(\d+)/mi;
    my $got = '';
    while (length($got) < ($cl // 0)) {
        sysread($s, $got, $cl - length($got), length $got) or last;
    }
    $answers++ if $head =~ m{^HTTP/1\.1 403 };
}
close $s;
is($answers, $N, "$N refused logins with another user's ID: 403 each");
is($t->redis_cmd('XLEN', $t->rkey('audit')), $len,
    '... the audit stream did not grow');
my @r = grep { $_->{event} eq 'login_refused'
               && $_->{who} eq $t->fingerprint('mallory') } $t->refusals;
my $count = 0;
$count += $_->{count} for @r;
is($count, $N, "... counted: $N refusals of mallory's certificate");
ok(@r <= 2, '... in one record a minute (' . scalar(@r) . ')');
is($r[-1]{user}, 'frank', '... the last user ID tried is kept');
%ev = ();
$ev{"$_->{event} $_->{user}"}++ for $t->audit;
ok($ev{"revoked alice"} && $ev{"user_added frank"},
    '... the earlier security events are all still there');
like($t->ca('audit', '--count', 5),
    qr/ login_refused frank [0-9a-f]{64} \S+ refused \d+ times in this minute/,
    'ecodoc-ca audit shows the counted refusals');

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
