#!/usr/bin/perl

# The enrollment server as an HTTP server (libmicrohttpd): malformed and
# oversized requests, methods and pages that do not exist, a slow client
# that blocks nobody, and a clean stop on SIGINT. t/enroll_slow.t floods
# it with slow connections.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time sleep);
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->start(server => $t->enroll_server_conf);
$t->enroll_start();

# a raw request on the unix socket; the response parsed
sub raw {
    my ($req, %o) = @_;
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM,
        Peer => $t->enroll_sock) or die "connect: $!";
    my $resp = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm($o{timeout} || 20);
    eval {
        syswrite($s, $req);
        while (sysread($s, my $buf, 65536)) {
            $resp .= $buf;
        }
        1;
    };
    alarm 0;
    close $s;
    return Ecodoc::Test::parse_response($resp, $o{method});
}

# --- what the server refuses
my $r = raw("GARBAGE\r\n\r\n");

# a NUL in a form body, with the head and in a later packet alike
my $nul = "user=ab\0cd&password=x";
my $head = "POST /enroll/step1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
    . "application/x-www-form-urlencoded\r\nContent-Length: "
    . length($nul) . "\r\n\r\n";
is(raw($head . $nul)->{status}, 400, 'a NUL in a body sent with the head: 400');
{
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM,
        Peer => $t->enroll_sock) or die "connect: $!";
    syswrite($s, $head);
    sleep 0.3;
    syswrite($s, $nul);
    my $resp = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 20;
    eval { while (sysread($s, my $buf, 65536)) { $resp .= $buf } };
    alarm 0;
    like($resp, qr{^HTTP/1\.1 400 }, '... and in a later packet: 400');
}

# libmicrohttpd closes the connection on a request line it cannot parse
ok(!$r->{status} || $r->{status} == 400,
    'a malformed request line: no page, the connection closed'
    . ($r->{status} ? ' (400)' : ''));
$r = raw("GET /enroll/ HTTP/2.0\r\nHost: x\r\n\r\n");
is($r->{status}, 505, 'an unknown HTTP version: 505');
$r = raw("GET /enroll/ HTTP/1.1\r\nBad Header: x\r\n\r\n");
is($r->{status}, 400, 'a space in a header name: 400');
$r = raw("GET /enroll/ HTTP/1.1\r\nBad\x01: x\r\n\r\n");
is($r->{status}, 400, 'a control character in a header name: 400');
$r = raw("GET /enroll/ HTTP/1.1\r\nX: " . ('a' x 40000) . "\r\n\r\n");
is($r->{status}, 431, 'a head over the 32 KiB a connection may use: 431');
$r = raw("GET /enroll/ HTTP/1.1\r\nHost: x\r\n"
    . join('', map { "X-$_: y\r\n" } 1 .. 101) . "\r\n");
is($r->{status}, 431, 'more than 100 header fields: 431');
$r = raw("POST /enroll/step1 HTTP/1.1\r\nContent-Length: 70000\r\n\r\n"
    . ('x' x 70000));
is($r->{status}, 413, 'a body over 64 KiB: 413');
like($r->{text}, qr/64 KiB/, '... says the limit');
$r = raw("POST /enroll/step1 HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n");
is($r->{status}, 413, 'a body over 1 MiB: 413 before it is sent');
$r = raw("POST /enroll/step1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
is($r->{status}, 501, 'Transfer-Encoding: 501');
$r = raw("POST /enroll/step1 HTTP/1.1\r\nHost: x\r\n\r\n");
is($r->{status}, 411, 'POST without Content-Length: 411');
$r = raw("POST /enroll/step1 HTTP/1.1\r\nContent-Length: 1\r\n"
    . "Content-Length: 2\r\n\r\nab");
is($r->{status}, 400, 'two Content-Lengths: 400');
$r = raw("HEAD /enroll/ HTTP/1.1\r\nHost: x\r\n\r\n", method => 'HEAD');
is($r->{status}, 200, 'HEAD: 200');
is($r->{body}, '', '... without a body');
is(hdr($r, 'connection'), 'close', 'one request per connection');

# --- through nginx
$r = $t->http(GET => '/enroll/nothing-here', lang => 'en');
is($r->{status}, 404, 'an unknown page: 404');
like($r->{text}, qr/Page not found/, '... a clear page');
is(hdr($r, 'cache-control'), 'no-store', '... not cached');
$r = $t->http(DELETE => '/enroll/step1', lang => 'en');
is($r->{status}, 405, 'DELETE: 405');
is(hdr($r, 'allow'), 'GET, HEAD, POST', '... with Allow');
$r = $t->http(POST => '/enroll/step4', form => [a => 1]);
is($r->{status}, 405, 'POST to STEP4: 405');
$r = $t->http(POST => '/enroll/step1', body => 'x' x 70000);
is($r->{status}, 413, 'a 70 KB form through nginx: 413');
$r = $t->http(POST => '/enroll/step1', body => 'user=a',
    content_type => 'text/plain');
is($r->{status}, 400, 'a form that is not urlencoded: 400');
$r = $t->http(GET => '/enroll/step1?user=%00');
is($r->{status}, 200, 'a query string is ignored');

# --- a slow client blocks nobody, and is cut off
my $slow = IO::Socket::UNIX->new(Type => SOCK_STREAM,
    Peer => $t->enroll_sock) or die "connect: $!";
syswrite($slow, "GET /enroll/ HTTP/1.1\r\nHost: x\r\n");
my $t0 = time;
$r = $t->http(GET => '/enroll/');
is($r->{status}, 200, 'a request while a slow client waits: 200');
cmp_ok(time - $t0, '<', 3, '... at once');
my $resp = '';
{
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 20;
    eval {
        while (sysread($slow, my $buf, 4096)) {
            $resp .= $buf;
        }
    };
    alarm 0;
}
my $waited = time - $t0;
is($resp, '', 'the slow client is cut off, without a page');
ok($waited >= 8 && $waited < 15, sprintf('... after 10 s of silence (%.1f)',
    $waited));

# --- SIGINT: a clean stop
my $pid = $t->{procs}{enroll};
kill 'INT', $pid;
my $deadline = time + 5;
sleep 0.05 while $t->enroll_running && time < $deadline;
ok(!$t->enroll_running, 'SIGINT: the server exits');
ok(!-e $t->enroll_sock, '... and removes its socket');
$r = $t->http(GET => '/enroll/');
is($r->{status}, 502, 'nginx then answers 502');

# killed, it leaves its socket; started again, it replaces it
$t->enroll_start();
$t->reap('enroll', 'KILL', 5);
ok(-S $t->enroll_sock, 'SIGKILL leaves a stale socket');
$t->enroll_start();
$deadline = time + 5;
do { $r = $t->http(GET => '/enroll/') } until $r->{status} == 200
    || time > $deadline || !sleep 0.05;
is($r->{status}, 200, '... and the server starts again over it');
$t->write_file('not-a-socket', 'x');
my $res = $t->ca({}, 'enroll-server', '--dir', $t->eca_dir, '--listen',
    'unix:' . $t->path('not-a-socket'));
is($res->{exit}, 1, 'it never replaces a file that is not a socket');
is($t->read_file('not-a-socket'), 'x', '... the file is untouched');
is($t->ca({}, 'enroll-server', '--dir', $t->eca_dir, '--listen',
    '127.0.0.1:1')->{exit}, 2, '--listen must be unix:/path: exit 2');

done_testing();
