#!/usr/bin/perl

# Malformed and hostile input: forms, sizes, content types, cookies,
# user IDs. Answers as the contract says, touches no user, crashes
# nothing, and a normal request still works afterwards.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my $u = $t->ready_user('alice');
my $b = $t->ready_user('bob');
my $ck = $u->{cookie};

sub token {
    my $get = $t->http(GET => '/ecodoc/login', cert => 'alice');
    return (form_token($get) // '', cookies($get));
}

sub post_login {
    my ($body, %o) = @_;
    my ($tok, $jar) = token();
    $body =~ s/TOKEN/$tok/g;
    return $t->http(POST => '/ecodoc/login', cert => 'alice', cookies => $jar,
        body => $body, %o);
}

my $user_before = $t->user_record('alice');
my $keys_before = $t->redis_cmd('KEYS', $t->rkey('user:*'));
my $sess_before = $t->redis_cmd('SCARD', $t->rkey('user:alice:sessions'));

# --- malformed forms
my $r = post_login('csrf=TOKEN&user&password=x');
is($r->{status}, 400, "field without '=': 400");
$r = post_login('csrf=TOKEN&user=%ZZalice&password=x');
is($r->{status}, 400, 'bad %-escape %ZZ: 400');
$r = post_login('csrf=TOKEN&user=alice&password=x%4');
is($r->{status}, 400, 'truncated %-escape: 400');
$r = post_login('csrf=TOKEN&user=alice%&password=x', lang => 'en');
is($r->{status}, 400, 'lone %: 400');
like($r->{text}, qr/The request is malformed\./, '... "The request is malformed."');

# --- too big
$r = post_login('csrf=TOKEN&user=alice&password=' . ('x' x 5000));
is($r->{status}, 413, 'body over 4096 bytes: 413');

# --- wrong content type
for my $ct ('text/plain', 'application/json', 'multipart/form-data; boundary=x') {
    $r = post_login("csrf=TOKEN&user=alice&password=$u->{password}",
        content_type => $ct);
    is($r->{status}, 400, "Content-Type $ct: 400");
    ok(!defined cookie($r), '... no session');
}

# --- user IDs (login and sign-up)
my %bad = (
    'CRLF'      => "alice\r\nX-Injected: 1",
    'non-UTF-8' => "alice\xff",
    '65 chars'  => 'a' x 65,
    'empty'     => '',
    'space'     => 'ali ce',
    'slash'     => 'a/b',
    'NUL'       => "alice\0",
);
for my $case (sort keys %bad) {
    my $id = $bad{$case};
    my $enc = join '', map { sprintf '%%%02X', ord } split //, $id;
    $r = post_login("user=$enc&password=" . $u->{password} . '&csrf=TOKEN',
        lang => 'en');
    is($r->{status}, 400, "login, user ID $case: 400");
    like($r->{text}, qr/The user ID is not valid\.|The request is malformed\./,
        '... message');
    ok(!defined hdr($r, 'x-injected'), '... no header injection');
    ok(!defined cookie($r), '... no session');

    my $get = $t->http(GET => '/ecodoc/signup', cert => 'alice');
    my $tok = form_token($get) // (token())[0];
    $r = $t->http(POST => '/ecodoc/signup', cert => 'alice',
        body => "user=$enc&password=x1234567890&csrf=$tok");
    ok($r->{status} == 400 || $r->{status} == 409,
        "signup, user ID $case: refused (400, or 409 as the cert is bound)");
}
# the boundary: 64 characters is a valid user ID, so it is not a 400; alice's
# certificate is not bound to it, which the login refuses like any other ID
$r = post_login('user=' . ('a' x 64) . '&password=whatever-123&csrf=TOKEN',
    lang => 'en');
is($r->{status}, 403, '64-char user ID: valid, not bound to this cert: 403');
like($r->{text}, qr/not registered for this user ID/, '... says why');

is_deeply($t->user_record('alice'), $user_before, "alice's record untouched");
is_deeply([sort @{ $t->redis_cmd('KEYS', $t->rkey('user:*')) }],
    [sort @$keys_before], 'no user key made or removed');
is($t->redis_cmd('SCARD', $t->rkey('user:alice:sessions')), $sess_before,
    'no session made');

# --- cookies
my $before = $t->backend_requests();
$r = $t->http(GET => '/', cert => 'alice', headers => [
    Cookie => 'junk=' . ('x' x 6000) . "; __Host-ecodoc=$ck"]);
is($r->{status}, 200, 'big cookie header with the session: 200');
is(backend_user($r), 'alice', '... as alice');
$r = $t->http(GET => '/', cert => 'alice', headers => [
    Cookie => 'junk=' . ('x' x 6000)]);
is($r->{status}, 303, 'big cookie header without a session: 303');
$r = $t->http(GET => '/', cert => 'alice', headers => [
    Cookie => 'junk=' . ('x' x 20000) . "; __Host-ecodoc=$ck"]);
is($r->{status}, 400, 'cookie header over nginx buffers: 400 (nginx)');

my $many = join '; ', map { "c$_=v$_" } 1 .. 100;
$r = $t->http(GET => '/', cert => 'alice',
    headers => [Cookie => "$many; __Host-ecodoc=$ck"]);
is($r->{status}, 200, '100 cookies and the session: 200');
$r = $t->http(GET => '/', cert => 'alice', headers => [Cookie => $many]);
is($r->{status}, 303, '100 cookies, no session: 303');

for my $odd ("$ck\x01", "\x7f$ck", "\"$ck\"", "$ck=", substr($ck, 0, 42),
    "$ck" . 'A', "$ck%00", '!' x 43, '../../etc/passwd', "\xff" x 43, '')
{
    (my $show = $odd) =~ s/([^\x21-\x7e])/sprintf '\\x%02x', ord $1/ge;
    $r = $t->http(GET => '/', cert => 'alice',
        headers => [Cookie => "__Host-ecodoc=$odd"]);
    is($r->{status}, 303, "odd cookie value '$show': no session (303)");
}

$r = $t->http(GET => '/', cert => 'alice',
    headers => [Cookie => "__Host-ecodoc=garbage; __Host-ecodoc=$ck"]);
ok($r->{status} == 200 || $r->{status} == 303,
    'duplicate cookie (garbage, session): 200 or 303');
ok($r->{status} != 200 || backend_user($r) eq 'alice', '... never anybody else');
$r = $t->http(GET => '/', cert => 'alice',
    headers => [Cookie => "__Host-ecodoc=$b->{cookie}; __Host-ecodoc=$ck"]);
ok($r->{status} == 200 || $r->{status} == 303,
    "duplicate cookie (bob's, alice's) with alice's cert: 200 or 303");
ok($r->{status} != 200 || backend_user($r) eq 'alice', '... never bob');
$r = $t->http(GET => '/', cert => 'alice',
    headers => [Cookie => "__Host-ecodoc=$ck; __Host-ecodoc=$b->{cookie}"]);
ok($r->{status} != 200 || backend_user($r) eq 'alice',
    'duplicate cookie (alice\'s, bob\'s): never bob');
$r = $t->http(GET => '/', cert => 'alice',
    headers => [Cookie => "x__Host-ecodoc=$ck"]);
is($r->{status}, 303, 'a cookie whose name only ends in __Host-ecodoc: 303');
$r = $t->http(GET => '/', cert => 'alice',
    headers => [Cookie => "__host-ecodoc=$ck"]);
is($r->{status}, 303, 'cookie name in another case: 303');

# --- nothing crashed, and the normal path works
is(scalar($t->crashes), 0, 'no crashed workers')
    or diag(join "\n", $t->crashes);
ok($t->nginx_running, 'nginx still running');
$r = $t->http(GET => '/after', cert => 'alice', cookie => $ck);
is($r->{status}, 200, 'a normal request still works');
is(backend_user($r), 'alice', '... as alice');
$r = $t->login('alice', 'alice', $u->{password});
is($r->{status}, 303, 'a normal login still works');

done_testing();
