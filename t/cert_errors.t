#!/usr/bin/perl

# The pages for a certificate that cannot be used, as conf/nginx.conf sets
# them up: "error_page 495 496 /ecodoc/certificate". An expired
# certificate (issued with a notAfter already past), one from another CA,
# none sent (with ssl_verify_client optional the gate's own 403; with
# "on" nginx's 496) and one revoked in Redis each get a page in Japanese
# and English: an error status, a heading that names the problem, what
# happened (the expiry date where known), what to do, the link to the
# enrollment site; never nginx's bare page.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(strftime);
use Test::More;
use Time::Local qw(timegm);
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
my ($on_port) = Ecodoc::Test::free_ports(1);
$t->eca_init();

my $pages = <<'EOF';
        error_page 495 496 /ecodoc/certificate;
        location / {
            ecodoc on;
            proxy_pass http://127.0.0.1:%%BACKEND_PORT%%;
        }
        location /ecodoc/ {
            ecodoc_pages;
        }
EOF

# a second server like the first, but with "ssl_verify_client on": nginx
# itself refuses a request without a certificate (496)
$t->start(
    http => "    ecodoc_enroll_url /enroll/;\n"
        . "    ecodoc_forgot_url https://help.example/ecodoc;\n"
        . "    server {\n"
        . "        listen 127.0.0.1:$on_port ssl;\n"
        . "        server_name localhost;\n"
        . "        ssl_certificate %%DIR%%/server.crt;\n"
        . "        ssl_certificate_key %%DIR%%/server.key;\n"
        . "        ssl_client_certificate %%DIR%%/ca.crt;\n"
        . "        ssl_verify_client on;\n"
        . $pages
        . "    }\n",
    locations => $pages);

$t->cert('expired', days => -1);
$t->cert('alice');

# the expiry date as the pages write it (the server's time zone)
my ($end) = $t->openssl_out('x509', '-in', $t->path('expired.crt'),
    '-noout', '-enddate') =~ /notAfter=(.+)$/m;
my %mon;
@mon{qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)} = 0 .. 11;
my ($b, $d, $hh, $mm, $ss, $y) =
    $end =~ /^(\w{3})\s+(\d+) (\d\d):(\d\d):(\d\d) (\d{4}) GMT/
    or BAIL_OUT("no notAfter in '$end'");
my @lt = localtime(timegm($ss, $mm, $hh, $d, $mon{$b}, $y));
my %date = (
    ja => strftime('%Y', @lt) . '年' . ($lt[4] + 1) . "月$lt[3]日",
    en => "$lt[3] " . strftime('%B %Y', @lt),
);

my %T = (
    ja => {
        required => 'クライアント証明書が必要です',
        expired  => '証明書の有効期限切れ',
        other    => 'この証明書は使えません',
        revoked  => '証明書の失効',
        enroll   => '証明書発行サイトへ',
        contact  => 'お問い合わせ先',
        next_required => qr/証明書パスワードで証明書発行サイトから発行してください/,
        next_expired  => qr/管理者から新しい証明書パスワードを受け取り、証明書発行サイトで新しい証明書を発行/,
        next_other    => qr/本サービスで発行された証明書を選択してください/,
        next_revoked  => qr/新しい証明書が必要です/,
        expired_on    => qr/この証明書は\Q$date{ja}\E \d\d:\d\d（[^）]+）に有効期限が切れました。/,
    },
    en => {
        required => 'Client certificate required',
        expired  => 'Certificate expired',
        other    => 'Certificate not accepted',
        revoked  => 'Certificate revoked',
        enroll   => 'Go to the enrollment site',
        contact  => 'Contact',
        next_required => qr/get one from the enrollment site with the certificate password/,
        next_expired  => qr/Ask your administrator for a new certificate password and get a new certificate from the enrollment site/,
        next_other    => qr/choose the certificate issued by this service/,
        next_revoked  => qr/You need a new certificate/,
        expired_on    => qr/This certificate expired on \Q$date{en}\E, \d\d:\d\d \S+\./,
    },
);

# one page: its status, heading, what to do, the links; never nginx's own
sub page_ok {
    my ($r, $lang, $status, $what, $name) = @_;
    my $T = $T{$lang};
    is($r->{status}, $status, "$name ($lang): $status");
    like($r->{text}, qr{<html lang="$lang">}, "... in $lang");
    like($r->{text}, qr{<h1>\Q$T->{$what}\E</h1>}, "... headed \"$T->{$what}\"");
    like($r->{text}, $T->{"next_$what"}, '... says what to do');
    like($r->{text}, qr{<a href="/enroll/">\Q$T->{enroll}\E</a>},
        '... links to the enrollment site');
    like($r->{text}, qr{<a href="https://help\.example/ecodoc">\Q$T->{contact}\E</a>},
        '... and to whom to ask');
    unlike($r->{text}, qr{<center>|nginx|SSL certificate error|No required SSL certificate},
        '... not nginx\'s bare page');
}

for my $lang (qw(ja en)) {

    # --- none sent: the gate's 403 (optional), nginx's 496 (on)
    my $r = $t->http(GET => '/docs/x', lang => $lang);
    page_ok($r, $lang, 403, 'required', 'no certificate, gated');
    $r = $t->http(GET => '/ecodoc/login', lang => $lang);
    page_ok($r, $lang, 403, 'required', 'no certificate, the login page');
    {
        local $t->{port} = $on_port;
        $r = $t->http(GET => '/docs/x', lang => $lang);
        page_ok($r, $lang, 400, 'required',
            'no certificate, ssl_verify_client on (496)');
    }

    # --- expired: nginx's 495, the date it expired
    $r = $t->http(GET => '/docs/x', cert => 'expired', lang => $lang);
    page_ok($r, $lang, 400, 'expired', 'expired certificate');
    like($r->{text}, $T{$lang}{expired_on}, '... with the date it expired');
    $r = $t->http(POST => '/ecodoc/login', cert => 'expired', lang => $lang,
        form => [user => 'x', password => 'y']);
    page_ok($r, $lang, 400, 'expired', 'expired certificate, a POST');
    {
        local $t->{port} = $on_port;
        $r = $t->http(GET => '/', cert => 'expired', lang => $lang);
        page_ok($r, $lang, 400, 'expired',
            'expired certificate, ssl_verify_client on');
    }

    # --- another CA
    $r = $t->http(GET => '/', cert => 'other', lang => $lang);
    page_ok($r, $lang, 400, 'other', 'a certificate of another CA');
    {
        local $t->{port} = $on_port;
        $r = $t->http(GET => '/ecodoc/signup', cert => 'other',
            lang => $lang);
        page_ok($r, $lang, 400, 'other',
            'a certificate of another CA, ssl_verify_client on');
    }
}

# --- any other failure: the verifier's reason (a server certificate of
# the CA, not made for clients)
$t->issue('server-only', subject => '/O=Ecodoc Test/CN=server-only',
    ext => 'server');
for my $lang (qw(ja en)) {
    my $r = $t->http(GET => '/', cert => 'server-only', lang => $lang);
    is($r->{status}, 400, "a certificate not for clients ($lang): 400");
    like($r->{text}, $lang eq 'ja'
        ? qr{<h1>証明書を検証できません</h1>\n<p class="error" role="alert">この証明書を検証できませんでした。 \(\w+ certificate purpose\)</p>\n<p>コンピュータの日付と時刻}
        : qr{<h1>Certificate not verified</h1>\n<p class="error" role="alert">This certificate could not be verified\. \(\w+ certificate purpose\)</p>\n<p>Check that your computer(?:'|&#39;)s date and time},
        '... headed, with the reason and what to do');
    like($r->{text}, qr{<a href="https://help\.example/ecodoc">},
        '... and whom to ask');
}

# --- revoked in Redis: the gate's 403 and the login's
my $pw = $t->add_user('alice');
is($t->signup('alice', 'alice', $pw)->{status}, 200, 'alice signs up');
my $fp = $t->fingerprint('alice');
like($t->eca('revoke', '--fingerprint', $fp), qr/^revoked: $fp/m,
    'alice\'s certificate revoked');
for my $lang (qw(ja en)) {
    my $r = $t->http(GET => '/docs/x', cert => 'alice', lang => $lang);
    page_ok($r, $lang, 403, 'revoked', 'revoked certificate, gated');
    $r = $t->login('alice', 'alice', $pw, lang => $lang);
    page_ok($r, $lang, 403, 'revoked', 'revoked certificate, a login');
}

# --- the page itself
$t->cert('carol');
my $r = $t->http(GET => '/ecodoc/certificate', cert => 'carol');
is($r->{status}, 303, 'a good certificate on the certificate page: 303');
is($t->location_path($r), '/', '... on to the service');
$r = $t->http(POST => '/ecodoc/certificate', cert => 'carol',
    form => [a => 1]);
is($r->{status}, 405, 'POST to the certificate page: 405');
is(hdr($r, 'allow'), 'GET, HEAD', '... with Allow');
$r = $t->http(GET => '/ecodoc/certificate', lang => 'en');
page_ok($r, 'en', 403, 'required', 'the certificate page without one');

# --- without ecodoc_enroll_url and ecodoc_forgot_url: no links, the text
# still says what to do
$t->nginx_reload(http => '');
$r = $t->http(GET => '/', cert => 'expired', lang => 'en');
is($r->{status}, 400, 'no URLs configured: expired still 400');
like($r->{text}, $T{en}{next_expired}, '... says what to do');
unlike($r->{text}, qr{<a href}, '... without links');

is($t->backend_requests(), 0, 'nothing reached the backend');
is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
