#!/usr/bin/perl

# Quiet in a real nginx.conf: Debian's own /etc/nginx/nginx.conf with
# every module of nginx-extras enabled (modules-enabled/) and this module
# loaded passes nginx -t without a single warning. (The module's variables
# are kept out of nginx's variables hash, NGX_HTTP_VAR_NOHASH, which the
# extras fill to the brim of variables_hash_bucket_size 64.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;

my $module = $ENV{ECODOC_MODULE} // '';
my $nginx = $ENV{ECODOC_NGINX} || '/usr/sbin/nginx';
my @extras = glob('/etc/nginx/modules-enabled/*.conf');

plan skip_all => 'ECODOC_MODULE is not set' unless -f $module;
plan skip_all => "Debian's nginx only (this is $nginx)"
    unless $nginx eq '/usr/sbin/nginx' && -f '/etc/nginx/nginx.conf';
plan skip_all => 'the modules of nginx-extras are not installed '
    . '(make test installs them)' unless @extras >= 15;
plan skip_all => 'libnginx-mod-http-ecodoc is installed (make test-deb): '
    . 'the module would be loaded twice' if grep { /ecodoc/ } @extras;

my $dir = tempdir('ecodoc-debconf-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub nginx_t {
    my ($first) = @_;
    open(my $in, '<', '/etc/nginx/nginx.conf') or die "nginx.conf: $!";
    local $/;
    my $conf = $first . <$in>;
    close $in;
    open(my $out, '>', "$dir/nginx.conf") or die "$dir/nginx.conf: $!";
    print {$out} $conf;
    close $out;
    my $res = `$nginx -t -c $dir/nginx.conf 2>&1`;
    return ($? >> 8, $res);
}

my ($rc, $out) = nginx_t('');
is($rc, 0, 'the stock nginx.conf with ' . scalar(@extras)
    . ' extra modules: nginx -t passes') or diag($out);
unlike($out, qr/\[warn\]/, '... without a warning (as shipped)') or diag($out);

($rc, $out) = nginx_t("load_module $module;\n");
is($rc, 0, '... and with this module loaded') or diag($out);
unlike($out, qr/\[warn\]/, '... still without a warning') or diag($out);
unlike($out, qr/variables_hash/, '... the variables hash as optimal as before');

done_testing();
