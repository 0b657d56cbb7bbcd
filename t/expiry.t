#!/usr/bin/perl

# The gate knows the client certificate's expiry: $ecodoc_cert_expires
# (whole days left) and $ecodoc_cert_not_after (ISO 8601, UTC) reach the
# backend as headers; in the last ecodoc_cert_expiry_notice days the
# module's pages carry a notice with the date, in the page's language,
# linking to ecodoc_renewal_url (or telling the user to ask the
# administrator), and not before. The test CA's certificates last two
# days ("short"); "long" lasts sixty.

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
$t->start(
    http => "    ecodoc_renewal_url /enroll/renew;\n",
    locations => <<'EOF');
        location / {
            ecodoc on;
            proxy_set_header X-Ecodoc-User $ecodoc_user;
            proxy_set_header X-Ecodoc-Cert-Expires $ecodoc_cert_expires;
            proxy_set_header X-Ecodoc-Cert-Not-After $ecodoc_cert_not_after;
            proxy_pass http://127.0.0.1:%%BACKEND_PORT%%;
        }
        location = /open {
            ecodoc off;
            return 200 "[$ecodoc_cert_expires|$ecodoc_cert_not_after]\n";
        }
        location /ecodoc/ {
            ecodoc_pages;
        }
EOF

$t->cert('short', cn => 'shorty');
$t->cert('long', cn => 'lena', days => 60);

# a certificate's notAfter: epoch, ISO 8601, and the dates the pages write
my %mon;
@mon{qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)} = 0 .. 11;
sub not_after {
    my ($name) = @_;
    my ($b, $d, $hh, $mm, $ss, $y) = $t->openssl_out('x509', '-in',
        $t->path("$name.crt"), '-noout', '-enddate')
        =~ /notAfter=(\w{3})\s+(\d+) (\d\d):(\d\d):(\d\d) (\d{4}) GMT/
        or BAIL_OUT("no notAfter in $name.crt");
    my $e = timegm($ss, $mm, $hh, $d, $mon{$b}, $y);
    my @lt = localtime $e;
    return {
        epoch => $e,
        iso   => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime $e),
        ja    => strftime('%Y', @lt) . '年' . ($lt[4] + 1) . "月$lt[3]日 "
                 . strftime('%H:%M', @lt),
        en    => "$lt[3] " . strftime('%B %Y, %H:%M', @lt),
    };
}
my %end = (short => not_after('short'), long => not_after('long'));

# whole days left now (a second may pass between two requests)
sub days_re {
    my ($name) = @_;
    my $s = $end{$name}{epoch} - time;
    my ($a, $b) = (int($s / 86400), int(($s + 5) / 86400));
    return qr/(?:$a|$b)/;
}

# --- the variables, where the gate is off
my $r = $t->http(GET => '/open', cert => 'short');
my $d = days_re('short');
like($r->{body}, qr/^\[$d\|\Q$end{short}{iso}\E\]$/,
    "2-day certificate: \$ecodoc_cert_expires 1, \$ecodoc_cert_not_after $end{short}{iso}");
$r = $t->http(GET => '/open', cert => 'long');
$d = days_re('long');
like($r->{body}, qr/^\[$d\|\Q$end{long}{iso}\E\]$/,
    '60-day certificate: 59 days');
$r = $t->http(GET => '/open');
is($r->{body}, "[|]\n", 'no certificate: both empty');

# --- to the backend as headers
my $short = $t->ready_user('shorty', cert => 'short');
my $long = $t->ready_user('lena', cert => 'long');
for my $u ($short, $long) {
    $r = $t->http(GET => '/docs/x', cert => $u->{cert},
        cookie => $u->{cookie});
    is($r->{status}, 200, "$u->{user} reaches the backend");
    $d = days_re($u->{cert});
    like($r->{text}, qr/^X-Ecodoc-Cert-Expires: $d$/m,
        '... told the days left (X-Ecodoc-Cert-Expires)');
    like($r->{text},
        qr/^X-Ecodoc-Cert-Not-After: \Q$end{$u->{cert}}{iso}\E$/m,
        '... and the date (X-Ecodoc-Cert-Not-After)');
}
$r = $t->http(GET => '/docs/x', cert => 'short', cookie => $short->{cookie},
    headers => ['X-Ecodoc-Cert-Expires' => 999]);
unlike($r->{text}, qr/^X-Ecodoc-Cert-Expires: 999$/m,
    'a client cannot send its own X-Ecodoc-Cert-Expires');

# --- the notice, in the last 30 days (the default)
my %notice = (
    ja => qr{<div class="notice" id="expiry"><p>お使いの証明書の有効期限は\Q$end{short}{ja}\E（[^）]+）です（残り[12]日）。期限が切れる前に証明書を更新してください。</p>\n<p><a href="/enroll/renew">証明書を更新する</a></p>},
    en => qr{<div class="notice" id="expiry"><p>Your certificate expires on \Q$end{short}{en}\E \S+ \([12] days left\)\. Please renew it before then\.</p>\n<p><a href="/enroll/renew">Renew your certificate</a></p>},
);
for my $lang (qw(ja en)) {
    for my $page (qw(login signup password logout)) {
        $r = $t->http(GET => "/ecodoc/$page", cert => 'short',
            cookie => $short->{cookie}, lang => $lang);
        is($r->{status}, 200, "$lang: $page page, 2 days left");
        like($r->{text}, $notice{$lang},
            '... the notice: the date, the days, the renewal link');
    }
    $r = $t->login('short', 'shorty', 'wrong-password-1', lang => $lang);
    like($r->{text}, $notice{$lang}, "$lang: also beside a wrong password");
    for my $page (qw(login password)) {
        $r = $t->http(GET => "/ecodoc/$page", cert => 'long',
            cookie => $long->{cookie}, lang => $lang);
        is($r->{status}, 200, "$lang: $page page, 59 days left");
        unlike($r->{text}, qr/id="expiry"/, '... no notice');
    }
}

# --- not on the pages that refuse: the lock
$t->redis_cmd('HSET', $t->rkey('user:shorty'), 'locked', '1');
$r = $t->http(GET => '/docs/x', cert => 'short');
is($r->{status}, 403, 'locked: 403');
unlike($r->{text}, qr/id="expiry"/, '... without the notice');
$t->redis_cmd('HSET', $t->rkey('user:shorty'), 'locked', '0');

# --- a shorter notice, then none; without a renewal URL
$t->nginx_reload(http => "    ecodoc_cert_expiry_notice 1;\n");
$r = $t->http(GET => '/ecodoc/login', cert => 'short');
unlike($r->{text}, qr/id="expiry"/,
    'ecodoc_cert_expiry_notice 1: no notice two days before');
$t->nginx_reload(http => "    ecodoc_cert_expiry_notice 90;\n");
$r = $t->http(GET => '/ecodoc/login', cert => 'long', lang => 'en');
like($r->{text}, qr{<div class="notice" id="expiry"><p>Your certificate expires on \Q$end{long}{en}\E \S+ \((?:59|60) days left\)\. Before then, please ask your administrator for a new certificate\.</p>\n</div>},
    'ecodoc_cert_expiry_notice 90: the 60-day certificate too; no renewal URL: ask the administrator');
unlike($r->{text}, qr{/enroll/renew}, '... and no renewal link');
$t->nginx_reload(http => "    ecodoc_cert_expiry_notice 0;\n");
$r = $t->http(GET => '/ecodoc/login', cert => 'short');
unlike($r->{text}, qr/id="expiry"/, 'ecodoc_cert_expiry_notice 0: off');

# --- nginx -t refuses a notice longer than ten years, or negative
for my $days (qw(3651 -1)) {
    my $conf = $t->write_nginx_conf(%{ $t->{conf_opts} },
        http => "    ecodoc_cert_expiry_notice $days;\n");
    my $d = $t->dir;
    my ($rc, $out) = $t->nginx_test("$d/", "$d/nginx.conf");
    isnt($rc, 0, "ecodoc_cert_expiry_notice $days: nginx -t fails");
    like($out, qr/ecodoc_cert_expiry_notice/, '... naming the directive');
}

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
