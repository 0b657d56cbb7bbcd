#!/usr/bin/perl

# Every committed fuzz corpus file (fuzz/NAME/corpus/) replayed once through
# its harness, built without libFuzzer under AddressSanitizer and UBSan
# (`make fuzz-replay`, docs/fuzzing.md): a crash, a sanitizer's report or a
# harness's own check failing fails the test.

use strict;
use warnings;

use FindBin;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use Test::More;

my $top = abs_path("$FindBin::Bin/..");

# the build directory of the run: where ecodoc-ca is, else ./build
my $build = $ENV{ECODOC_CA} ? dirname(abs_path($ENV{ECODOC_CA}))
                            : "$top/build";
my $out = "$build/fuzz-replay";

my @harnesses = map { m{/fuzz/([a-z0-9_]+)/corpus$} ? $1 : () }
                sort glob("$top/fuzz/*/corpus");
ok(@harnesses >= 9, 'the harnesses: ' . join(' ', @harnesses));

my $log = `make -C '$top' --no-print-directory fuzz-replay BUILD='$build' 2>&1`;
is($?, 0, 'make fuzz-replay builds them') or diag($log);

for my $h (@harnesses) {
    my @files = grep { -f } glob("$top/fuzz/$h/corpus/*");
    ok(@files >= 3, "$h: a corpus of " . scalar(@files) . ' files');

    local $ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0:'
        . 'strict_string_checks=1:detect_stack_use_after_return=1';
    local $ENV{UBSAN_OPTIONS} = 'halt_on_error=1:print_stacktrace=1';

    my $run = `'$out/$h' '$top/fuzz/$h/corpus' 2>&1`;
    my $rc = $?;
    my $n = scalar @files;

    ok($rc == 0 && $run =~ /: $n inputs replayed$/m
           && $run !~ /Sanitizer|runtime error/,
       "$h: $n inputs replayed, no crash, no sanitizer report")
        or diag($run);
}

done_testing();
