#!/usr/bin/perl

# Renewal with the current certificate (docs/behaviour.md, "A
# certificate's life"): a user logged in with a certificate in its last
# days gets a new one from the enrollment site with the password typed
# again; the old one keeps working until the new one signs up, which takes
# over the binding and revokes the old one in the same step. Refused when
# renewal is off, too early, without a session of this certificate, with a
# wrong password. A revocation racing a renewal wins: neither certificate
# gets in.

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
$t->enroll_start('--renewal', 30);

my $n = 0;

# a user signed up and logged in with a certificate of ecodoc-ca that
# expires in a day, the initial password changed
sub ready {
    my ($u) = @_;
    my $initial = $t->add_user($u);
    my $name = "$u-old";
    $t->csr($name);
    $t->eca('issue', $u, '--csr', $t->path("$name.csr"), '--out',
        $t->path("$name.crt"), '--days', 1);
    $t->{certs}{$name} = 1;
    my $r = $t->signup($name, $u, $initial);
    die "signup $u: $r->{status}" unless $r->{status} == 200;
    $r = $t->login($name, $u, $initial);
    my $c = cookie($r);
    my $pw = $t->password_for($u);
    $r = $t->change_password($name, $c, $initial, $pw);
    die "password $u: $r->{status}" unless $r->{status} == 200;
    return { user => $u, cert => $name, fp => $t->fingerprint($name),
        password => $pw, cookie => cookie($r) // $c };
}

# the renewal page and its form: (GET, POST, jar)
sub renew {
    my ($who, %o) = @_;
    my $jar = { $Ecodoc::Test::COOKIE
        => exists $o{cookie} ? $o{cookie} : $who->{cookie} };
    delete $jar->{$Ecodoc::Test::COOKIE}
        unless defined $jar->{$Ecodoc::Test::COOKIE};
    my $cert = exists $o{cert} ? $o{cert} : $who->{cert};
    my $get = $t->enroll_get('/enroll/renew', $jar, cert => $cert,
        lang => $o{lang} // 'en');
    my $post = $t->enroll_post('/enroll/renew', $jar,
        [password => $o{password} // $who->{password}],
        csrf => form_token($get) // 'none', cert => $cert,
        lang => $o{lang} // 'en');
    return ($get, $post, $jar);
}

# STEP2-3 of a renewal's enrollment session; the new certificate as NAME
sub issue_new {
    my ($who, $jar, $name) = @_;
    my $e = $t->enroll($who->{user}, undef, jar => $jar,
        p12_password => 'renewal-p12');
    return $e unless ($e->{p12}{status} // 0) == 200;
    $t->install_p12($name, $e->{p12}{body}, 'renewal-p12');
    return $e;
}

sub docs {
    my ($cert, $cookie) = @_;
    return $t->http(GET => '/docs', cert => $cert, cookie => $cookie);
}

# --- the journey
my $ann = ready('ann');
my ($get, $post, $jar) = renew($ann, lang => 'ja');
is($get->{status}, 200, 'the renewal page with a certificate in its last day: 200');
like($get->{text}, qr/証明書の更新/, '... (ja) headed as the renewal');
like($get->{text}, qr{id="user">ann<}, '... names the user');
like($get->{text}, qr{id="not-after">\d{4}年\d{1,2}月\d{1,2}日},
    '... and when the current certificate expires');
like($get->{body}, qr/name="password"/, '... asks for the password');
is($post->{status}, 303, 'the password again: 303');
is($t->location_path($post), '/enroll/step2', '... on to STEP2');
ok(grep({ $_->{event} eq 'renewal_requested' && $_->{user} eq 'ann'
          && $_->{fp} eq $ann->{fp} } $t->audit), 'audit: renewal_requested');

my $e = issue_new($ann, $jar, 'ann-new');
is($e->{step3}{status}, 303, 'STEP3 of the renewal: issued');
is($e->{p12}{status}, 200, '... the PKCS#12 downloaded');
my $new = $t->fingerprint('ann-new');
my $info = $t->redis_hash($t->rkey("certinfo:$new"));
is($info->{replaces}, $ann->{fp}, 'the new certificate is to replace the old');
ok(grep({ $_->{event} eq 'renewal_issued' && $_->{fp} eq $new } $t->audit),
    'audit: renewal_issued');
like($t->openssl_out('x509', '-in', $t->path('ann-new.crt'), '-noout',
    '-subject', '-enddate'), qr/CN ?= ?ann/, '... issued to CN=ann');

# the old certificate works until the new one signs up
is(docs($ann->{cert}, $ann->{cookie})->{status}, 200,
    'the old certificate still reaches the backend');
my $r = $t->http(GET => '/docs', cert => 'ann-new');
is($r->{status}, 303, 'the new one, not signed up: 303');
is($t->location_path($r), '/ecodoc/signup', '... to the sign-up');

$r = $t->signup('ann-new', 'ann', 'wrong-password-1');
is($r->{status}, 401, 'its sign-up with a wrong password: 401');
is(docs($ann->{cert}, $ann->{cookie})->{status}, 200,
    '... the old certificate goes on working');

$r = $t->signup('ann-new', 'ann', $ann->{password});
is($r->{status}, 200, 'the new certificate signs up with the password: 200');
is($t->redis_cmd('HGET', $t->rkey("cert:$new"), 'user'), 'ann',
    '... bound to ann');
is($t->redis_cmd('GET', $t->rkey("revoked:$ann->{fp}")), 'superseded',
    '... and the old one revoked (superseded) in the same step');
is_deeply($t->redis_cmd('SMEMBERS', $t->rkey('user:ann:certs')), [$new],
    '... which is no longer bound');
ok(grep({ $_->{event} eq 'renewal_taken_over' && $_->{fp} eq $new
          && $_->{detail} =~ /\Q$ann->{fp}\E/ } $t->audit),
    'audit: renewal_taken_over');
$r = docs($ann->{cert}, $ann->{cookie});
is($r->{status}, 403, 'the old certificate at the gate, with its session: 403');
$r = $t->login($ann->{cert}, 'ann', $ann->{password});
is($r->{status}, 403, '... and its login: 403');
$r = $t->login('ann-new', 'ann', $ann->{password});
is($r->{status}, 303, 'the new certificate logs in');
$r = docs('ann-new', cookie($r));
is($r->{status}, 200, '... and reaches the backend');
is(backend_user($r), 'ann', '... as ann');

# the renewal's session is used
$r = $t->enroll_post('/enroll/step3', $jar,
    [mode => 'p12', p12pw => 'renewal-p12', p12pw2 => 'renewal-p12'],
    csrf => $e->{csrf});
is($r->{status}, 403, 'a second issuance in the renewal session: 403');

# --- refusals
my $bea = ready('bea');
($get) = renew($bea, cert => undef);
is($get->{status}, 403, 'no certificate: 403');
like($get->{text}, qr/No client certificate/, '... says so');

($get, $post) = renew($bea, cookie => undef);
is($get->{status}, 403, 'no session: 403');
like($get->{text}, qr/log in with the certificate you use now/, '... says to log in');
like($get->{text}, qr{href="https://localhost:\d+/ecodoc/login\?next=/enroll/renew"},
    '... with the way to the login and back');
is($post->{status}, 403, '... and its form post: 403');

my $cat = ready('cat');
($get, $post) = renew($bea, cookie => $cat->{cookie});
is($get->{status}, 403, "another certificate's session: 403");

my $before = $t->failures('bea');
($get, $post) = renew($bea, password => 'not-her-password');
is($post->{status}, 401, 'a wrong password: 401');
like($post->{text}, qr/The password is incorrect\. Six wrong/, '... says so, and that six lock');
like($post->{body}, qr/name="password"[^>]*aria-invalid="true"/, '... beside the field');
is($t->failures('bea'), $before + 1, '... counted with the gate\'s wrong passwords');
($get, $post) = renew($bea);
is($post->{status}, 303, 'then the right one: 303');
is($t->failures('bea'), 0, '... which clears the count');

# locked by wrong renewal passwords, as by wrong logins
my $dan = ready('dan');
for my $i (1 .. 6) {
    ($get, $post) = renew($dan, password => "wrong-$i");
}
is($post->{status}, 403, 'the sixth wrong renewal password: 403');
ok($t->is_locked('dan'), '... dan is locked');
is(docs($dan->{cert}, $dan->{cookie})->{status}, 403,
    '... and his session ended with it');

# a session past the initial password only
my $eve_initial = $t->add_user('eve');
$t->cert('eve');
$t->signup('eve', 'eve', $eve_initial);
$r = $t->login('eve', 'eve', $eve_initial);
($get) = renew({ cert => 'eve', cookie => cookie($r), password => $eve_initial });
is($get->{status}, 403, 'a session still on the initial password: 403');

# too early: the harness' certificates live 2 days, the window is 1 day
my $kim = $t->ready_user('kim');
$t->enroll_stop;
$t->enroll_start('--renewal', 1);
($get, $post) = renew($kim);
is($get->{status}, 403, 'before the renewal window: 403');
like($get->{text}, qr/cannot be renewed yet/, '... says so');
is($post->{status}, 403, '... and the form post too');

$t->enroll_stop;
$t->enroll_start('--renewal', 'off');
($get, $post) = renew($cat);
is($get->{status}, 403, 'renewal off: 403');
like($get->{text}, qr/renewal is turned off/, '... says so');
is($post->{status}, 403, '... and the form post too');
is($t->eca({}, 'enroll-server', '--renewal', 'soon', '--listen',
    'unix:' . $t->path('x.sock'))->{exit}, 2, '--renewal soon: usage error');

$t->enroll_stop;
$t->enroll_start('--renewal', 'on');

# a renewal's session dies with the login session it came from
my $fay = ready('fay');
(undef, $post, $jar) = renew($fay);
is($post->{status}, 303, 'fay opens a renewal');
$t->logout($fay->{cert}, $fay->{cookie});
$e = $t->enroll('fay', undef, jar => $jar, p12_password => 'renewal-p12',
    lang => 'en');
is($e->{step3}{status}, 403, '... after her logout STEP3 is refused');
like($e->{step3}{text}, qr/renewal was cancelled.*Start the renewal again/s,
    '... says why, and leads back to the renewal');
is(scalar @{ $t->redis_cmd('SMEMBERS', $t->rkey('certs:fay')) }, 1,
    '... no certificate issued');

# --- a renewal racing a revocation of the old certificate: whichever runs
# first, neither certificate gets in afterwards
for my $round (1 .. 6) {
    my $u = "race$round";
    my $who = ready($u);
    my (undef, $p, $j) = renew($who);
    die "renewal $u: $p->{status}" unless $p->{status} == 303;
    my $ee = $t->enroll($u, undef, jar => $j, stop_before_step3 => 1);
    my @got = $t->parallel(2, sub {
        my ($i, $ready) = @_;
        $ready->();
        if ($i == 1) {
            select(undef, undef, undef, (0, 0.1, 0.2, 0.4, 0.8, 1.6)[$round - 1]);
            return $t->eca({}, 'revoke', '--fingerprint', $who->{fp})->{exit};
        }
        my $x = $t->enroll_post('/enroll/step3', $j,
            [mode => 'p12', p12pw => 'renewal-p12', p12pw2 => 'renewal-p12'],
            csrf => $ee->{csrf});
        return "step3 $x->{status}" unless $x->{status} == 303;
        $x = $t->enroll_get('/enroll/certificate.p12', $j);
        $t->install_p12("$u-new", $x->{body}, 'renewal-p12');
        $x = $t->signup("$u-new", $u, $who->{password});
        return "signup $x->{status}";
    });
    is($got[1], 0, "round $round: the revocation ran");
    my $in = 0;
    if (-f $t->path("$u-new.crt")) {
        my $l = $t->login("$u-new", $u, $who->{password});
        $in++ if $l->{status} == 303;
        $in++ if docs("$u-new", cookie($l))->{status} == 200;
    }
    my $l = $t->login($who->{cert}, $u, $who->{password});
    $in++ if $l->{status} == 303;
    $in++ if docs($who->{cert}, $who->{cookie})->{status} == 200;
    is($in, 0, "round $round ($got[0]): neither certificate gets in");
    for my $c (@{ $t->redis_cmd('SMEMBERS', $t->rkey("certs:$u")) }) {
        ok($t->redis_cmd('EXISTS', $t->rkey("revoked:$c")),
            "round $round: the renewal's certificate is revoked");
    }
    is_deeply($t->redis_cmd('SMEMBERS', $t->rkey("user:$u:certs")), [],
        "round $round: nothing bound to $u");
}

# the revocation after the takeover reaches the new certificate too
my $gus = ready('gus');
(undef, $post, $jar) = renew($gus);
issue_new($gus, $jar, 'gus-new');
$r = $t->signup('gus-new', 'gus', $gus->{password});
is($r->{status}, 200, 'gus: the renewed certificate took over');
$t->eca('revoke', '--fingerprint', $gus->{fp}, '--reason', 'keyCompromise');
$r = $t->login('gus-new', 'gus', $gus->{password});
is($r->{status}, 403, 'the old one revoked for keyCompromise afterwards: '
    . 'the one renewed with it is revoked too')
    or diag(explain($t->redis_hash($t->rkey('certinfo:' . $t->fingerprint('gus-new')))));

# two renewals at once: the first to sign up takes over, the other is
# revoked with the old certificate
my $hal = ready('hal');
my (undef, $p1, $j1) = renew($hal);
my (undef, $p2, $j2) = renew($hal);
is("$p1->{status} $p2->{status}", '303 303', 'hal opens two renewals');
issue_new($hal, $j1, 'hal-a');
issue_new($hal, $j2, 'hal-b');
my @got = $t->parallel(2, sub {
    my ($i, $ready) = @_;
    $ready->();
    return $t->signup($i ? 'hal-b' : 'hal-a', 'hal', $hal->{password})->{status};
});
is(join(' ', sort @got), '200 403', 'both sign up at once: one wins')
    or diag("@got");
is(scalar @{ $t->redis_cmd('SMEMBERS', $t->rkey('user:hal:certs')) }, 1,
    '... one certificate bound');

# a user deleted: the renewal's certificate waiting to take over is revoked
my $ida = ready('ida');
(undef, $post, $jar) = renew($ida);
issue_new($ida, $jar, 'ida-new');
$t->ca('user', 'delete', 'ida');
ok($t->redis_cmd('EXISTS', $t->rkey('revoked:' . $t->fingerprint('ida-new'))),
    'ida deleted: her renewal certificate is revoked');

is(scalar $t->crashes, 0, 'no nginx worker crashed');

done_testing();
