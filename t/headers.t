#!/usr/bin/perl

# Identity headers a client sends never reach the backend: only the two
# that nginx sets, with the real values.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start(server => "underscores_in_headers on;\n");

my $u = $t->ready_user('alice');
my $fp = $u->{fp};
my @expect = sort map { lc } 'X-Ecodoc-User: alice', "X-Ecodoc-Cert-Fingerprint: $fp";

my @spoof = (
    'X-Ecodoc-User'             => 'mallory',
    'x-ecodoc-user'             => 'mallory2',
    'X-ECODOC-USER'             => 'mallory3',
    'X-Ecodoc-Admin'            => '1',
    'X_Ecodoc_User'             => 'mallory4',
    'x_ecodoc_admin'            => '1',
    'X-Ecodoc-Cert-Fingerprint' => '0' x 64,
    'X-Ecodoc-Anything'         => 'z',
);

my $r = $t->http(GET => '/h', cert => 'alice', cookie => $u->{cookie},
    headers => \@spoof);
is($r->{status}, 200, 'request with spoofed headers passes the gate');
is_deeply([sort map { lc } identity_headers($r)], \@expect,
    'backend sees only the two headers nginx set, with the real values')
    or diag(join "\n", identity_headers($r));
unlike($r->{text}, qr/mallory/, 'no spoofed value anywhere in what arrived');

# one at a time, and with a POST body
my @pairs = @spoof;
while (my ($n, $v) = splice @pairs, 0, 2) {
    $r = $t->http(POST => '/api', cert => 'alice', cookie => $u->{cookie},
        form => [a => 1], headers => [$n => $v]);
    is_deeply([sort map { lc } identity_headers($r)], \@expect,
        "$n: dropped");
}

# the same request raw, with the spoofed header before Host and folded
my $port = $t->port;
$r = $t->http(GET => '/', cert => 'alice', raw =>
    "GET /raw HTTP/1.1\r\nX-Ecodoc-User: mallory5\r\nHost: localhost:$port\r\n"
    . "Cookie: __Host-ecodoc=$u->{cookie}\r\nX-Ecodoc-User: mallory6\r\n"
    . "Connection: close\r\n\r\n");
is($r->{status}, 200, 'raw request passes');
is_deeply([sort map { lc } identity_headers($r)], \@expect,
    'raw request: only the real headers');

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
