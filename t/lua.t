#!/usr/bin/perl

# The Redis scripts are one source of truth: every file of lua/ is headed by
# what it takes and answers, compiles in Redis with lib.lua before it, and
# no C source holds Lua text; the two programs use the same files.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Spec;
use Test::More;
use Ecodoc::Test qw(:all);

my $root = File::Spec->catdir($FindBin::Bin, '..');
my $dir = "$root/lua";

sub slurp {
    my ($f) = @_;
    open(my $fh, '<', $f) or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

my $t = Ecodoc::Test->new(plain => 1);
$t->redis_start();

my $lib = slurp("$dir/lib.lua");
my @names = map { m{/([a-z_]+)\.lua\z} ? $1 : () } glob("$dir/*.lua");
ok(scalar(grep { $_ ne 'lib' } @names) >= 17, 'the scripts are in lua/')
    or diag("found: @names");

for my $name (grep { $_ ne 'lib' } @names) {
    my $src = slurp("$dir/$name.lua");
    like($src, qr/\A-- \Q$name\E\.lua: /, "$name.lua: opens with what it does");
    like($src, qr/^-- (?:ARGV\[4\]|No arguments)/m,
        "$name.lua: says its arguments");
    like($src, qr/^-- Reply: /m, "$name.lua: says its reply");
    my $sha = eval { $t->redis_cmd('SCRIPT', 'LOAD', $lib . $src) };
    like($sha // $@, qr/\A[0-9a-f]{40}\z/, "$name.lua: compiles in Redis");
}

# the generator gives the same text, less comments and blank lines
my $out = $t->path('lua.c');
system('sh', "$root/scripts/lua2c", $dir, $out, 'gate', 'revoke') == 0
    or BAIL_OUT("scripts/lua2c failed");
my $c = slurp($out);
like($c, qr/^const char  ecodoc_lua_gate\[\] =$/m, 'lua2c: ecodoc_lua_gate');
like($c, qr/^const char  ecodoc_lua_revoke\[\] =$/m, 'lua2c: ecodoc_lua_revoke');
unlike($c, qr/"\s*--/, 'lua2c: no comment lines in the C');
isnt(system("sh '$root/scripts/lua2c' '$dir' '$out' nosuch 2>/dev/null"), 0,
    'lua2c: an unknown script is an error');

# and the C holds none: every call of Redis' Lua API is in lua/
my @c = (glob("$root/ngx_ecodoc_module/*.[ch]"), glob("$root/ca-tools/*.[ch]"));
my @lua = grep { slurp($_) =~ /redis\.call|redis\.pcall/ } @c;
is("@lua", '', 'no C source holds a Redis script');

# one clock: no script is given the time, each asks Redis
for my $name (grep { $_ ne 'lib' } @names) {
    unlike(slurp("$dir/$name.lua"), qr/ARGV\[\d+\]\s*--?\s*now|-- .*ARGV\[\d+\] now/,
        "$name.lua: takes no time from the caller");
}

# cert_record.lua, run as the enrollment site runs it, once the enrollment
# was cancelled (revoke --user deletes P enroll:U) between the redemption
# and the recording: the certificate is revoked as it is recorded
my $P = $t->prefix;
my $fp = 'ab' x 32;
$t->redis_cmd('HSET', "${P}user:gina", 'pw', 'x', 'locked', '0');
$t->redis_cmd('HSET', "${P}enroll_sess:S1", 'user', 'gina', 'id', 'I1',
    'fp', 'pending');
$t->redis_cmd('HSET', "${P}enroll:gina", 'id', 'I1', 'used', '1');
my $record = $lib . slurp("$dir/cert_record.lua");
my @rec = ($record, 0, $P, '127.0.0.1', '', 'gina', $fp, '0A', '1999999999');
is($t->redis_cmd('EVAL', @rec, 'S1'), 'ok',
    'cert_record: the enrollment stands: ok');
ok(!$t->redis_cmd('EXISTS', "${P}revoked:$fp"), '... not revoked');
$t->redis_cmd('DEL', "${P}enroll:gina");
is($t->redis_cmd('EVAL', @rec, 'S1'), 'cancelled',
    'cert_record: the enrollment cancelled meanwhile: cancelled');
like($t->redis_cmd('GET', "${P}revoked:$fp") // '', qr/cancelled/,
    '... and the certificate revoked');
$t->redis_cmd('DEL', "${P}revoked:$fp", "${P}user:gina");
is($t->redis_cmd('EVAL', @rec, ''), 'cancelled',
    'cert_record: the user deleted meanwhile (command line): cancelled');
ok($t->redis_cmd('EXISTS', "${P}revoked:$fp"), '... and revoked');

done_testing();
