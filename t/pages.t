#!/usr/bin/perl

# The pages as ops shape them: their own layout (ecodoc_template), the
# "forgot your password" link (ecodoc_forgot_url); unknown pages and
# methods; the language by Accept-Language. Then no dead ends (issue 14):
# wrong passwords say how many tries are left before the lock, the lock
# page has a heading and a way back, the new password's rules stand
# beside the field from the start in the page's language, and the forced
# password change has a logout.

use strict;
use warnings;
use utf8;

use File::Temp qw(tempdir);
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Ecodoc::Test qw(:all);

my $tdir = tempdir('ecodoc-tpl-XXXXXX', TMPDIR => 1, CLEANUP => 1);
open(my $fh, '>:utf8', "$tdir/layout.html") or die "$tdir: $!";
print {$fh} "<!DOCTYPE html><html lang=\"{{lang}}\"><title>{{title}}</title>"
    . "<body><div id=\"ops-layout\">{{service}}|{{content}}</div>"
    . "<!-- {{unknown}} --></body></html>\n";
close $fh;

my $t = Ecodoc::Test->new()->start(http =>
    "    ecodoc_template $tdir/layout.html;\n"
    . "    ecodoc_forgot_url \"https://help.example/ecodoc?a=1&b=2\";\n");

$t->cert('alice');
my $r = $t->http(GET => '/ecodoc/login', cert => 'alice');
is($r->{status}, 200, 'login page with the operator\'s layout');
like($r->{text}, qr{<html lang="ja"><title>ログイン</title>}, '... {{lang}} and {{title}}');
# the test CA's certificates last two days: the expiry notice opens the
# content (t/expiry.t)
like($r->{text}, qr{<div id="ops-layout">エコ文書サービス\|<div class="notice" id="expiry">.*?</div>\n<p>ログインする}s, '... {{service}} and {{content}}, the expiry notice in it');
like($r->{text}, qr{name="csrf" value="[^"]+"}, '... the form inside');
like($r->{text}, qr{<!--  -->}, '... an unknown placeholder is dropped');
unlike($r->{text}, qr{<style>}, '... and none of the built-in layout');

$r = $t->http(GET => '/ecodoc/login', cert => 'alice', lang => 'en');
like($r->{text}, qr{<html lang="en"><title>Log in</title>}, 'English by Accept-Language');
$r = $t->http(GET => '/ecodoc/login', cert => 'alice',
    headers => ['Accept-Language' => 'en;q=0.4, ja;q=0.9']);
like($r->{text}, qr{<html lang="ja">}, 'ja rated above en: Japanese');
$r = $t->http(GET => '/ecodoc/login', cert => 'alice',
    headers => ['Accept-Language' => 'fr, en-GB;q=0.8']);
like($r->{text}, qr{<html lang="en">}, 'en-GB and no ja: English');
$r = $t->http(GET => '/ecodoc/login', cert => 'alice',
    headers => ['Accept-Language' => 'en;q=0']);
like($r->{text}, qr{<html lang="ja">}, 'en;q=0 (not acceptable): Japanese');
$r = $t->http(GET => '/ecodoc/login', cert => 'alice',
    headers => ['Accept-Language' => 'EN-us ; Q=0.7, ja;q=0.500']);
like($r->{text}, qr{<html lang="en">}, 'any case, spaces, 3 decimals: English');
$r = $t->http(GET => '/ecodoc/login', cert => 'alice',
    headers => ['Accept-Language' => 'en;q=2, ja;q=0.1']);
like($r->{text}, qr{<html lang="ja">}, 'a q above 1 counts as 0: Japanese');

$r = $t->http(GET => '/ecodoc/forgot', lang => 'en');
is($r->{status}, 200, 'forgot page, even without a certificate');
like($r->{text}, qr/please contact your administrator/, '... says whom to ask');
like($r->{text}, qr{href="https://help\.example/ecodoc\?a=1&amp;b=2"},
    '... with the configured link, escaped');

$r = $t->http(GET => '/ecodoc/nothing', cert => 'alice');
is($r->{status}, 404, 'an unknown page: 404');
$r = $t->http(PUT => '/ecodoc/login', cert => 'alice', body => 'x');
is($r->{status}, 405, 'PUT: 405');
is(hdr($r, 'allow'), 'GET, HEAD, POST', '... with Allow');
$r = $t->http(POST => '/ecodoc/forgot', cert => 'alice',
    form => [x => 1]);
is($r->{status}, 405, 'POST to forgot: 405');
is(hdr($r, 'allow'), 'GET, HEAD', '... with Allow');
$r = $t->http(HEAD => '/ecodoc/login', cert => 'alice');
is($r->{status}, 200, 'HEAD of a form: 200');
is($r->{body}, '', '... without a body');

# --- no dead ends, with the built-in layout: two rules, each in both
# languages (the harness's own rule has one message for both)
$t->nginx_reload(http =>
    "    ecodoc_forgot_url https://help.example/ecodoc;\n"
    . "    ecodoc_password_require \"[A-Za-z]\" \"英字を1文字以上含めてください\" "
    . "\"at least one letter\";\n");

my %T = (
    ja => {
        tries  => sub { "連続して6回間違えるとユーザIDがロックされます（残り$_[0]回）。" },
        locked => 'ユーザIDのロック',
        back   => qr{<a href="/ecodoc/login">ログインへ</a>},
        rules  => qr{<div class="rules" id="new-rules">新しいパスワードの条件:\n<ul>\n<li>10文字以上</li>\n<li>at least one digit</li>\n<li>英字を1文字以上含めてください</li>\n<li>現在のパスワードやユーザIDとは異なるもの</li>\n</ul></div>\n<input type="password" id="new" [^>]*aria-describedby="new-rules"},
        letter => '新しいパスワードが条件を満たしていません: 英字を1文字以上含めてください',
        logout => qr{<a href="/ecodoc/logout">ログアウト</a>},
    },
    en => {
        tries  => sub { "The user ID is locked after 6 wrong passwords in a row: $_[0] tries left." },
        locked => 'User ID locked',
        back   => qr{<a href="/ecodoc/login">Go to login</a>},
        rules  => qr{<div class="rules" id="new-rules">Rules for the new password:\n<ul>\n<li>At least 10 characters</li>\n<li>at least one digit</li>\n<li>at least one letter</li>\n<li>Not your current password or your user ID</li>\n</ul></div>\n<input type="password" id="new" [^>]*aria-describedby="new-rules"},
        letter => 'The new password does not meet this rule: at least one letter',
        logout => qr{<a href="/ecodoc/logout">Log out</a>},
    },
);

for my $lang (qw(ja en)) {
    my $T = $T{$lang};
    my $u = "pat-$lang";
    $t->cert($u);
    my $initial = $t->add_user($u);
    is($t->signup($u, $u, $initial, lang => $lang)->{status}, 200,
        "$lang: $u signs up");

    # the forced change: the rules from the start, a logout
    $r = $t->login($u, $u, $initial, lang => $lang);
    my $c = cookie($r);
    $r = $t->http(GET => '/ecodoc/password', cert => $u, cookie => $c,
        lang => $lang);
    is($r->{status}, 200, "$lang: the forced password change");
    like($r->{text}, $T->{rules},
        '... the rules beside the new password, before any is broken');
    like($r->{text}, $T->{logout}, '... and a logout');
    $r = $t->change_password($u, $c, $initial, '0123456789012',
        undef, lang => $lang);
    is($r->{status}, 400, "$lang: a new password without a letter: 400");
    like($r->{text}, qr{<p class="error" role="alert" id="new-error">\Q$T->{letter}\E</p>},
        '... the rule\'s message in the page\'s language');
    like($r->{text}, qr{id="new" [^>]*aria-describedby="new-error new-rules"},
        '... the field points at the error and the rules');
    $r = $t->http(GET => '/ecodoc/logout', cert => $u, cookie => $c,
        lang => $lang);
    is($r->{status}, 200, "$lang: the logout it links to is served with the initial password");

    # wrong passwords 1-5 count down, the sixth locks
    for my $i (1 .. 5) {
        $r = $t->login($u, $u, "wrong-$i", lang => $lang);
        is($r->{status}, 401, "$lang: wrong password $i: 401");
        like($r->{text}, qr/\Q@{[ $T->{tries}->(6 - $i) ]}\E/,
            '... ' . (6 - $i) . ' tries left');
    }
    $r = $t->login($u, $u, 'wrong-6', lang => $lang);
    is($r->{status}, 403, "$lang: the sixth: 403");
    like($r->{text}, qr{<h1>\Q$T->{locked}\E</h1>}, "... headed \"$T->{locked}\"");
    like($r->{text}, $T->{back}, '... a way back to the login');
    like($r->{text}, qr{<a href="https://help\.example/ecodoc">}, '... and whom to ask');
    $r = $t->http(GET => '/docs/x', cert => $u, lang => $lang);
    is($r->{status}, 403, "$lang: the gate, locked: 403");
    like($r->{text}, qr{<h1>\Q$T->{locked}\E</h1>}, '... the same page');
    like($r->{text}, $T->{back}, '... with the way back');
}

is(scalar($t->crashes), 0, 'no crashed workers');

done_testing();
