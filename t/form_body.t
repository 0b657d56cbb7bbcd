#!/usr/bin/perl

# A form's body however it comes: with Content-Length, or chunked (as
# HTTP/1.1 clients may send it, and as HTTP/2 ends up without a length)
# in one chunk or several. The same form gets the same answer; a body
# over the limit is refused either way.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my $u = $t->ready_user('alice');

# a fresh login form: its body (with a valid token) and the cookies it set
sub login_form {
    my (%o) = @_;
    my $get = $t->http(GET => '/ecodoc/login', cert => 'alice');
    my $tok = form_token($get) // '';
    my $body = form_body(user => 'alice',
        password => $o{password} // $u->{password}, csrf => $tok);
    $body .= '&pad=' . ('x' x $o{pad}) if $o{pad};
    $body .= $o{extra} if defined $o{extra};
    return ($body, cookies($get));
}

# POSTs the body to the login page in these chunks (Transfer-Encoding)
sub post_chunked {
    my ($jar, @chunks) = @_;
    my $req = "POST /ecodoc/login HTTP/1.1\r\n"
        . 'Host: localhost:' . $t->port . "\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Transfer-Encoding: chunked\r\n";
    $req .= 'Cookie: ' . join('; ', map { "$_=$jar->{$_}" } sort keys %$jar)
        . "\r\n" if %$jar;
    $req .= "Connection: close\r\n\r\n";
    $req .= sprintf("%x\r\n%s\r\n", length $_, $_) for @chunks;
    $req .= "0\r\n\r\n";
    return $t->http(POST => '/ecodoc/login', cert => 'alice', raw => $req);
}

# the body cut into pieces of these sizes (the rest in the last one)
sub cut {
    my ($body, @sizes) = @_;
    my @pieces = map { substr($body, 0, $_, '') } @sizes;
    return (@pieces, $body);
}

# --- Content-Length: the reference answer
my ($body, $jar) = login_form();
ok(length($body) > 80 && length($body) < 120,
    'the login form is about a hundred bytes (' . length($body) . ')');
my $r = $t->http(POST => '/ecodoc/login', cert => 'alice', cookies => $jar,
    body => $body);
is($r->{status}, 303, 'login with Content-Length: 303');
is($t->location_path($r), '/', '... to the service');
ok(defined cookie($r), '... with a session');

# --- the same form, chunked
($body, $jar) = login_form();
$r = post_chunked($jar, $body);
is($r->{status}, 303, 'the same login chunked, one chunk: 303, not 413');
is($t->location_path($r), '/', '... to the service');
my $ck = cookie($r);
ok(defined $ck, '... with a session');
$r = $t->http(GET => '/', cert => 'alice', cookie => $ck);
is($r->{status}, 200, '... that passes the gate');
is(backend_user($r), 'alice', '... as alice');

($body, $jar) = login_form();
$r = post_chunked($jar, cut($body, 1, 9, 4, 30));
is($r->{status}, 303, 'chunked in five chunks: 303');
ok(defined cookie($r), '... with a session');

# a %XX escape cut between two chunks decodes all the same
($body, $jar) = login_form(extra => '&pad=%41%42');
$r = post_chunked($jar, cut($body, index($body, '%') + 1, 1));
is($r->{status}, 303, 'chunked with a %-escape cut in two: 303');
ok(defined cookie($r), '... with a session');

# a wrong password chunked counts as a wrong password, no more
($body, $jar) = login_form(password => 'Wrong-password-1');
$r = post_chunked($jar, cut($body, 20));
is($r->{status}, 401, 'wrong password chunked: 401');
is($t->failures('alice'), 1, '... one failure counted');

# --- the limits hold chunked too
($body, $jar) = login_form(pad => 5000);
$r = post_chunked($jar, cut($body, 1000, 1000, 1000, 1000));
is($r->{status}, 413, 'chunked body over 4096 bytes: 413');
ok(!defined cookie($r), '... no session');

($body, $jar) = login_form(pad => 40000);
$r = post_chunked($jar, cut($body, 8000, 8000, 8000, 8000));
is($r->{status}, 413, 'chunked body of 40 kB (kept in a file by nginx): 413');
ok(!defined cookie($r), '... no session');

$r = post_chunked($jar);
is($r->{status}, 400, 'empty chunked body: 400 (malformed), not 413');

# and the form over the limit with Content-Length, for comparison
($body, $jar) = login_form(pad => 5000);
$r = $t->http(POST => '/ecodoc/login', cert => 'alice', cookies => $jar,
    body => $body);
is($r->{status}, 413, 'body over 4096 bytes with Content-Length: 413');

# a successful login resets the count
($body, $jar) = login_form();
$r = post_chunked($jar, $body);
is($r->{status}, 303, 'chunked login after all that: 303');
is($t->failures('alice'), 0, '... the failure count reset');

is(scalar $t->crashes, 0, 'no worker crashed');

done_testing();
