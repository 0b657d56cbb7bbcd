#!/usr/bin/perl

# The pages as ops shape them: their own layout (ecodoc_template), the
# "forgot your password" link (ecodoc_forgot_url); unknown pages and
# methods; the language by Accept-Language.

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

done_testing();
