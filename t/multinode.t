#!/usr/bin/perl

# Several nginx nodes over one Redis set behave as one gate: a session
# made on one works on the others; a logout, lock, revocation or password
# change on one is honoured on all at once (within "valid" with
# ecodoc_cache); wrong passwords spread over every node, at once, still
# lock at six; form tokens work across nodes with ecodoc_secret_file
# (and, without it, each node keeps its own key as before). Every node,
# and ecodoc-ca, speaks to Redis over TLS with a client certificate, as
# nodes on other hosts than Redis would.

use strict;
use warnings;
use utf8;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use Ecodoc::Test qw(:all);

my $t = Ecodoc::Test->new();
$t->eca_init();
$t->issue('redis', subject => '/O=Ecodoc Test/CN=localhost', ext => 'redis');
$t->issue('redis-client', subject => '/O=Ecodoc Test/CN=gateway',
    ext => 'client');
my ($tls_port) = Ecodoc::Test::free_ports(1);
my %f = map { $_ => $t->path($_) }
    qw(ca.crt redis.crt redis.key redis-client.crt redis-client.key);
$t->write_file('secret', "k7Q2vXz9f1Lr8Hn3Tb6Yw0Pc5Jm4Ds2Ga8Ke1Uo9Ri\n");
chmod 0600, $t->path('secret');
my $secret = '    ecodoc_secret_file ' . $t->path('secret') . ";\n";
$t->start(http => $secret,
    redis_args => ['--tls-port', $tls_port, '--tls-cert-file', $f{'redis.crt'},
        '--tls-key-file', $f{'redis.key'}, '--tls-ca-cert-file', $f{'ca.crt'},
        '--tls-auth-clients', 'yes'],
    redis_conf => "    ecodoc_redis 127.0.0.1:$tls_port;\n"
        . "    ecodoc_redis_tls on;\n"
        . "    ecodoc_redis_tls_trusted_certificate $f{'ca.crt'};\n"
        . "    ecodoc_redis_tls_certificate $f{'redis-client.crt'};\n"
        . "    ecodoc_redis_tls_certificate_key $f{'redis-client.key'};\n",
    ca_redis => ['--redis', "127.0.0.1:$tls_port",
        '--redis-tls-ca', $f{'ca.crt'}, '--redis-tls-cert', $f{'redis-client.crt'},
        '--redis-tls-key', $f{'redis-client.key'}]);
my $n2 = $t->node();
my $n3 = $t->node(http => $secret
    . "    ecodoc_cache zone=ecodoc_multinode:1m valid=2s;\n");
my @nodes = ($t, $n2, $n3);

my $get = sub {
    my ($node, $u) = @_;
    return $node->http(GET => '/docs', cert => $u->{cert},
        cookie => $u->{cookie});
};

# --- a session made on node 1 works everywhere; forms cross nodes
my $a = $t->ready_user('alice');
for my $i (0 .. 2) {
    my $r = $get->($nodes[$i], $a);
    is($r->{status}, 200, 'node ' . ($i + 1) . ": alice's session");
    is(backend_user($r), 'alice', '... as alice');
}
my $r = $n2->login('alice', 'alice', $a->{password}, from => $t);
is($r->{status}, 303, 'login form of node 1 posted to node 2: accepted');
my $a2 = { %$a, cookie => cookie($r) };
is($get->($n3, $a2)->{status}, 200, '... that session works on node 3');

# --- logout on node 2 ends the session on node 1 at once, and on the
# caching node 3 within its valid=2s
is($get->($n3, $a2)->{status}, 200, 'node 3 has the session cached');
$r = $n2->logout('alice', $a2->{cookie}, from => $n3);
is($r->{status}, 200, 'logout on node 2 with the form of node 3');
is($get->($t, $a2)->{status}, 303, 'node 1: logged out at once');
my $t0 = time;
sleep 0.2 while $get->($n3, $a2)->{status} == 200 && time - $t0 < 5;
my $took = time - $t0;
isnt($get->($n3, $a2)->{status}, 200, 'node 3: logged out too');
cmp_ok($took, '<=', 2.5, sprintf('... within valid=2s (%.1fs)', $took));

# --- a password change on node 3 ends the sessions made on the others
my $b = $t->ready_user('bob');
$r = $n2->login('bob', 'bob', $b->{password});
my $b2 = { %$b, cookie => cookie($r) };
is($get->($n2, $b2)->{status}, 200, "bob's second session, made on node 2");
$r = $n3->change_password('bob', $b->{cookie}, $b->{password},
    'Bob-changed-2025');
is($r->{status}, 200, 'bob changes his password on node 3');
is($get->($n2, $b2)->{status}, 303, 'node 2: his other session has ended');
is($get->($t, $b2)->{status}, 303, 'node 1: ended too');

# --- a revocation is honoured by every node at once
my $c = $t->ready_user('carol');
is($get->($n2, $c)->{status}, 200, 'carol on node 2');
like($t->eca('revoke', '--fingerprint', $c->{fp}), qr/^revoked: /m,
    'carol revoked');
for my $i (0 .. 1) {
    is($get->($nodes[$i], $c)->{status}, 403,
        'node ' . ($i + 1) . ': revoked certificate refused');
}
is($n2->login('carol', 'carol', $c->{password})->{status}, 403,
    'node 2: no login with the revoked certificate');

# --- wrong passwords from every node at once: exactly six are checked,
# the user ID locks, and the right password is refused on every node
my $d = $t->ready_user('dave');
my $audit = $t->audit_last_id;
my @res = $t->parallel(18, sub {
    my ($i, $ready) = @_;
    $ready->();
    my $r = $nodes[$i % 3]->login('dave', 'dave', "wrong-password-$i");
    return $r->{status};
});
my %st;
$st{$_}++ for @res;
diag('18 wrong passwords over 3 nodes: '
    . join(', ', map { "$_ x$st{$_}" } sort keys %st));
is(scalar(grep { $_ eq '401' } @res), 5, 'five answered "wrong password"');
ok(!grep({ !/^(401|403|503)\z/ } @res), 'the others: locked or try again');
my @checked = grep { $_->{event} eq 'login_failed' && $_->{user} eq 'dave' }
    $t->audit(after => $audit);
is(scalar @checked, 6, 'six password checks in all');
ok($t->is_locked('dave'), 'dave is locked');
for my $i (0 .. 2) {
    is($nodes[$i]->login('dave', 'dave', $d->{password})->{status}, 403,
        'node ' . ($i + 1) . ': the right password is refused');
}
is($get->($n2, $d)->{status}, 403, "the lock ended dave's session");

# --- without ecodoc_secret_file each node keeps its own key
my $n4 = $t->node(http => '');
my $e = $t->ready_user('erin');
$r = $n4->login('erin', 'erin', $e->{password}, from => $t);
is($r->{status}, 403, 'node without the shared secret: form of node 1 refused');
is($n4->login('erin', 'erin', $e->{password})->{status}, 303,
    '... its own form works');

# --- the shared secret survives a reload: a form fetched before it works
my $g = $t->http(GET => '/ecodoc/login', cert => 'erin');
my $token = form_token($g);
ok(defined $token, 'a login form before the reload');
$t->nginx_reload();
$r = $t->http(POST => '/ecodoc/login', cert => 'erin', cookies => cookies($g),
    form => [user => 'erin', password => $e->{password}, csrf => $token]);
is($r->{status}, 303, '... its token is accepted after the reload');

for my $i (0 .. $#nodes) {
    like($nodes[$i]->error_log,
        qr/connected to Redis 127\.0\.0\.1:$tls_port over TLS/,
        'node ' . ($i + 1) . ': Redis over TLS');
}
ok(!$_->crashes, 'no worker crashed') for @nodes;

done_testing();
