#!/usr/bin/perl

# Login, the session cookie, the forced change of the initial password,
# logout, cookie replay, the next= parameter, the page language.

use strict;
use warnings;
use utf8;

use Digest::SHA qw(sha256_hex);
use MIME::Base64 qw(decode_base64);
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new()->start();

my $alice = $t->add_user('alice');
$t->cert('alice');
$t->cert('bob');
my $fp = $t->fingerprint('alice');
is($t->signup('alice', 'alice', $alice)->{status}, 200, 'alice signs up');
my $bob = $t->ready_user('bob');

# --- the wrong certificate for the user ID
my $r = $t->login('bob', 'alice', $alice, lang => 'en');
is($r->{status}, 403, "bob's certificate for alice: 403");
like($r->{text}, qr/This certificate is not registered for this user ID\./,
    '... message');
ok(!defined cookie($r) || cookie($r) eq '', '... no session cookie');
is($t->failures('alice'), 0, '... not counted against alice');

# --- login with the initial password
is($t->redis_cmd('HGET', $t->rkey('user:alice'), 'initial'), '1',
    'alice still has her initial password');
$r = $t->login('alice', 'alice', $alice);
is($r->{status}, 303, 'login: 303');
is($t->location_path($r), '/ecodoc/password',
    'initial password: redirected to /ecodoc/password');
my $sc = set_cookie_line($r) // '';
my $c0 = cookie($r) // '';
like($c0, qr/^[A-Za-z0-9_-]{43}\z/, 'cookie: 43 chars base64url');
like($sc, qr/;\s*Path=\/\s*(;|\z)/i, 'cookie: Path=/');
like($sc, qr/;\s*Secure\s*(;|\z)/i, 'cookie: Secure');
like($sc, qr/;\s*HttpOnly\s*(;|\z)/i, 'cookie: HttpOnly');
like($sc, qr/;\s*SameSite=Strict\s*(;|\z)/i, 'cookie: SameSite=Strict');
unlike($sc, qr/;\s*Domain=/i, 'cookie: no Domain (a __Host- cookie)');

# the session is stored hashed, never the token itself
my @sids = @{ $t->redis_cmd('SMEMBERS', $t->rkey('user:alice:sessions')) || [] };
is(scalar @sids, 1, 'one session for alice');
my %hash = map { $_ => 1 } sha256_hex($c0),
    sha256_hex(decode_base64(do { (my $b = $c0) =~ tr/-_/+\//; "$b=" }));
ok(@sids && $hash{ $sids[0] }, 'session ID is the SHA-256 of the token');
my $rec = @sids ? $t->redis_cmd('GET', $t->rkey("sess:$sids[0]")) // '' : '';
my ($rfp, $rcreated, $rinitial, $ruser) = split / /, $rec, 4;
is($ruser, 'alice', 'sess:SID record: user alice');
is($rfp, $fp, 'sess:SID record: the certificate');
is($rinitial, '1', 'sess:SID record: the password is still the initial one');
ok(defined $rcreated && abs($rcreated - time) < 60,
    'sess:SID record: created now');
my $ttl = @sids ? $t->redis_cmd('TTL', $t->rkey("sess:$sids[0]")) : -2;
ok($ttl > 0 && $ttl <= 1800, "sess:SID expires after the idle timeout ($ttl)");
is($t->redis_cmd('EXISTS', $t->rkey("sess:$c0")), 0, 'token not stored as a key');

# --- nothing but the password page until the change
for my $case (['GET', '/'], ['GET', '/docs/x'], ['HEAD', '/']) {
    my ($m, $p) = @$case;
    $r = $t->http($m => $p, cert => 'alice', cookie => $c0);
    is($r->{status}, 303, "initial password: $m $p 303");
    is($t->location_path($r), '/ecodoc/password', '... to /ecodoc/password');
}
$r = $t->http(POST => '/api', cert => 'alice', cookie => $c0, form => [a => 1]);
is($r->{status}, 403, 'initial password: POST /api 403');
$r = $t->http(GET => '/ecodoc/password', cert => 'alice', cookie => $c0);
is($r->{status}, 200, 'the password page is served');
is($t->backend_requests(), 0, 'backend not reached before the change');

# --- password rules (400, nothing changes)
$r = $t->change_password('alice', $c0, $alice, 'Mismatch-1234', 'Mismatch-1235');
is($r->{status}, 400, 'new passwords differ: 400');
$r = $t->change_password('alice', $c0, $alice, 'Short-1');
is($r->{status}, 400, 'too short: 400');
$r = $t->change_password('alice', $c0, $alice, 'no-digits-at-all', undef, lang => 'en');
is($r->{status}, 400, 'no digit: 400');
like($r->{text}, qr/at least one digit/, '... the configured message');
$r = $t->change_password('alice', $c0, $alice, $alice);
is($r->{status}, 400, 'same as the old one: 400');
is($t->redis_cmd('HGET', $t->rkey('user:alice'), 'initial'), '1',
    'refused changes changed nothing');
is($t->failures('alice'), 0, 'policy refusals are not failures');
$r = $t->http(POST => '/ecodoc/password', cert => 'alice',
    form => [current => $alice, new => 'x', new2 => 'x', csrf => 'x']);
is($r->{status}, 401, 'password POST without a session: 401');
$r = $t->http(GET => '/ecodoc/password', cert => 'alice');
is($r->{status}, 303, 'password GET without a session: 303');
like($t->location_path($r) // '', qr{^/ecodoc/login}, '... to login');

# same as the user ID (a user ID that fits the policy)
my $u2 = 'dave2024long';
my $d = $t->add_user($u2);
$t->cert('dave', cn => $u2);
$t->signup('dave', $u2, $d);
my $dc = cookie($t->login('dave', $u2, $d));
$r = $t->change_password('dave', $dc, $d, $u2);
is($r->{status}, 400, 'new password = user ID: 400');

# --- the change
my $new = 'Alice-new-pass-42';
$r = $t->change_password('alice', $c0, $alice, $new);
is($r->{status}, 200, 'password changed: 200');
like($r->{text}, qr/パスワードを変更しました。/, '... Japanese text');
my $c1 = cookie($r) // '';
like($c1, qr/^[A-Za-z0-9_-]{43}\z/, 'a new cookie is set');
isnt($c1, $c0, 'the cookie is rotated');
is($t->redis_cmd('HGET', $t->rkey('user:alice'), 'initial'), '0', 'initial = 0');
$r = $t->change_password('alice', $c1, $new, $new);
is($r->{status}, 400, 'new password same as the current one: 400');

$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c0);
is($r->{status}, 303, 'old cookie is dead after the change');
like($t->location_path($r) // '', qr{^/ecodoc/login}, '... to login');
is($t->backend_requests(), 0, '... backend not reached');

$r = $t->http(GET => '/docs/x', cert => 'alice', cookie => $c1);
is($r->{status}, 200, 'new cookie reaches the backend');
is_deeply([sort map { lc } identity_headers($r)],
    [sort map { lc } "X-Ecodoc-User: alice", "X-Ecodoc-Cert-Fingerprint: $fp"],
    'backend sees X-Ecodoc-User and X-Ecodoc-Cert-Fingerprint');
is($t->backend_requests(), 1, 'backend counted it');

# --- login with the new password goes to next, not to the password page
$r = $t->login('alice', 'alice', $new);
is($r->{status}, 303, 'login with the new password: 303');
is($t->location_path($r), '/', '... to /');
my $c2 = cookie($r);
$r = $t->login('alice', 'alice', $new, next => '/docs/a?b=1');
is($t->location_path($r), '/docs/a?b=1', 'next= a local path is followed');

# --- next= open-redirect attempts end at a local path
for my $evil ('//evil.example', 'https://evil.example', "/\\evil.example",
    'javascript:alert(1)', '///evil.example', "http:/\\evil.example",
    " //evil.example")
{
    $r = $t->login('alice', 'alice', $new, next => $evil);
    is($r->{status}, 303, "next=$evil: 303");
    is($t->location_path($r), '/', "next=$evil: to /");
}
$r = $t->login('alice', 'alice', $new, next => '/%2F%2Fevil');
ok(is_local_path($t->location_path($r)), 'next=/%2F%2Fevil: a local path')
    or diag(hdr($r, 'location'));
$r = $t->login('alice', 'alice', $new, next => "/x\r\nX-Injected: 1");
ok(!defined hdr($r, 'x-injected'), 'next with CRLF: no header injection');
ok(is_local_path($t->location_path($r)), '... and a local path');

# --- logout
$r = $t->logout('alice', $c2);
is($r->{status}, 200, 'logout: 200');
like($r->{text}, qr/ログアウトしました。/, '... Japanese text by default');
my $cleared = set_cookie_line($r) // '';
like($cleared, qr/^__Host-ecodoc=(;|\s*$|.*Max-Age=0|.*Expires=)/i,
    '... clears the cookie');
$r = $t->http(GET => '/', cert => 'alice', cookie => $c2);
is($r->{status}, 303, 'after logout: the cookie is dead (GET 303)');
$r = $t->http(POST => '/api', cert => 'alice', cookie => $c2, form => [a => 1]);
is($r->{status}, 401, 'after logout: POST 401');

# --- a cookie replayed with another certificate
my $c3 = cookie($t->login('alice', 'alice', $new));
$r = $t->http(GET => '/', cert => 'alice', cookie => $c3);
is($r->{status}, 200, 'alice has a working session');
my $before = $t->backend_requests();
$r = $t->http(GET => '/', cert => 'bob', cookie => $c3);
is($r->{status}, 303, "alice's cookie with bob's certificate: 303");
like($t->location_path($r) // '', qr{^/ecodoc/login}, '... to login');
$r = $t->http(POST => '/api', cert => 'bob', cookie => $c3, form => [a => 1]);
is($r->{status}, 401, "alice's cookie with bob's certificate: POST 401");
$t->cert('alice2', cn => 'alice');
$r = $t->http(GET => '/', cert => 'alice2', cookie => $c3);
is($r->{status}, 303, "alice's cookie with an unbound cert for alice: 303");
is($t->location_path($r), '/ecodoc/signup', '... to signup');
$r = $t->http(GET => '/', cookie => $c3);
is($r->{status}, 403, "alice's cookie without a certificate: 403");
is($t->backend_requests(), $before, 'replays never reached the backend');
$r = $t->http(GET => '/', cert => 'bob', cookie => $bob->{cookie});
is(backend_user($r), 'bob', "bob's own session still works");

# --- language
$r = $t->login('alice', 'alice', 'wrong-password-1', lang => 'en');
is($r->{status}, 401, 'wrong password: 401');
like($r->{text}, qr/The user ID or password is incorrect\./, 'en: English');
for my $al ('en-US,en;q=0.9', 'fr, en;q=0.5', 'en;q=0.9, ja;q=0.8') {
    $r = $t->login('alice', 'alice', 'wrong-password-1', lang => $al);
    like($r->{text}, qr/The user ID or password is incorrect\./,
        "Accept-Language: $al -> English");
}
is(cookie($t->login('alice', 'alice', $new)) ? 1 : 0, 1,
    'a good login resets the count');
for my $al (undef, 'ja', 'ja,en;q=0.5', 'en;q=0.5, ja;q=0.9', 'fr') {
    $r = $t->login('alice', 'alice', 'wrong-password-1',
        defined $al ? (lang => $al) : ());
    unlike($r->{text}, qr/The user ID or password is incorrect/,
        'Accept-Language: ' . ($al // 'none') . ' -> not English');
    like($r->{text}, qr/[\x{3040}-\x{30ff}]/, '... Japanese');
}
my $c4 = cookie($t->login('alice', 'alice', $new));
$r = $t->logout('alice', $c4, lang => 'en');
like($r->{text}, qr/You have been logged out\./, 'logout in English');

# --- the hashing ran in the worker's thread pool at idle priority (Linux:
# SCHED_IDLE, policy 5 in /proc/PID/task/TID/stat), the event loop at the
# normal one
SKIP: {
    skip 'scheduling policies are read from Linux /proc', 3
        unless -d '/proc/self/task';
    my $master = $t->{procs}{nginx};
    my ($worker) = split ' ', (eval {
        open(my $fh, '<', "/proc/$master/task/$master/children") or die;
        local $/;
        <$fh>;
    } // '');
    ok($worker, 'the nginx worker found');
    my %policy;
    for my $dir (glob("/proc/$worker/task/*")) {
        my ($tid) = $dir =~ m{/(\d+)\z} or next;
        open(my $fh, '<', "$dir/stat") or next;
        my $stat = <$fh>;
        $stat =~ s/^.*\) //s;              # past "pid (comm) "
        $policy{$tid} = (split ' ', $stat)[38];   # field 41
    }
    is($policy{$worker}, 0, 'the event loop: SCHED_OTHER');
    ok(grep({ $_ != $worker && $policy{$_} == 5 } keys %policy),
        'a hashing thread: SCHED_IDLE');
}

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
