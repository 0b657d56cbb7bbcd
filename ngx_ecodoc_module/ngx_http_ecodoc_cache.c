/*
 * The optional shared-memory cache of the gate's "ok" verdicts: a session
 * ID with its certificate and user, trusted for at most "valid" time.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ecodoc.h"


/* session ID and fingerprint in binary: a node fits a 256-byte slab chunk */

typedef struct {
    ngx_rbtree_node_t            node;       /* key: crc32 of the session */
    ngx_queue_t                  queue;      /* least recently stored last */
    ngx_msec_t                   expire;
    ngx_msec_t                   refresh;    /* one request asks Redis */
    u_char                       sid[NGX_HTTP_ECODOC_DIGEST_LEN];
    u_char                       fp[NGX_HTTP_ECODOC_DIGEST_LEN];
    u_char                       user_len;
    u_char                       user[NGX_HTTP_ECODOC_USER_MAX];
} ngx_http_ecodoc_cache_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;
} ngx_http_ecodoc_cache_sh_t;


typedef struct {
    ngx_http_ecodoc_cache_sh_t  *sh;
    ngx_slab_pool_t             *shpool;
} ngx_http_ecodoc_cache_t;


static ngx_http_ecodoc_cache_node_t *ngx_http_ecodoc_cache_find(
    ngx_http_ecodoc_cache_t *cache, u_char *sid, uint32_t hash);
static void ngx_http_ecodoc_cache_delete(ngx_http_ecodoc_cache_t *cache,
    ngx_http_ecodoc_cache_node_t *cn);
static ngx_int_t ngx_http_ecodoc_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/*
 * NGX_OK with ctx->user set when the session is cached for this certificate.
 * Past half its life an entry sends one request to Redis to renew it while
 * the others go on using it, instead of all of them at its end.
 */

ngx_int_t
ngx_http_ecodoc_cache_get(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    uint32_t                       hash;
    ngx_int_t                      rc;
    ngx_http_ecodoc_cache_t       *cache;
    ngx_http_ecodoc_cache_node_t  *cn;
    ngx_http_ecodoc_main_conf_t   *emcf;

    if (ctx->sid.len == 0) {
        return NGX_DECLINED;
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);
    cache = emcf->cache->data;
    hash = ngx_crc32_short(ctx->sid_bin, NGX_HTTP_ECODOC_DIGEST_LEN);
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_ecodoc_cache_find(cache, ctx->sid_bin, hash);

    if (cn && (ngx_msec_int_t) (cn->expire - ngx_current_msec) > 0
        && ngx_memcmp(cn->fp, ctx->conn->fp_bin, NGX_HTTP_ECODOC_DIGEST_LEN)
           == 0)
    {
        if ((ngx_msec_int_t) (ngx_current_msec - cn->refresh) >= 0) {
            cn->refresh = cn->expire;      /* this request renews it */

        } else {
            ctx->user.data = ngx_pnalloc(r->pool, cn->user_len + 1);

            if (ctx->user.data) {
                ngx_memcpy(ctx->user.data, cn->user, cn->user_len);
                ctx->user.data[cn->user_len] = '\0';
                ctx->user.len = cn->user_len;
                rc = NGX_OK;
            }
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ecodoc cache: %s", rc == NGX_OK ? "hit" : "miss");

    return rc;
}


void
ngx_http_ecodoc_cache_put(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    uint32_t                       hash;
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_http_ecodoc_cache_t       *cache;
    ngx_http_ecodoc_cache_node_t  *cn;
    ngx_http_ecodoc_main_conf_t   *emcf;

    if (ctx->user.len > NGX_HTTP_ECODOC_USER_MAX || ctx->sid.len == 0) {
        return;
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);
    cache = emcf->cache->data;
    hash = ngx_crc32_short(ctx->sid_bin, NGX_HTTP_ECODOC_DIGEST_LEN);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_ecodoc_cache_find(cache, ctx->sid_bin, hash);

    if (cn) {
        ngx_queue_remove(&cn->queue);

    } else {
        cn = ngx_slab_alloc_locked(cache->shpool,
                                   sizeof(ngx_http_ecodoc_cache_node_t));

        /* full: the oldest entries make room */

        for (n = 0; cn == NULL && n < 16; n++) {
            if (ngx_queue_empty(&cache->sh->queue)) {
                break;
            }

            q = ngx_queue_last(&cache->sh->queue);
            ngx_http_ecodoc_cache_delete(cache,
                ngx_queue_data(q, ngx_http_ecodoc_cache_node_t, queue));

            cn = ngx_slab_alloc_locked(cache->shpool,
                                       sizeof(ngx_http_ecodoc_cache_node_t));
        }

        if (cn == NULL) {
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return;
        }

        cn->node.key = hash;
        ngx_memcpy(cn->sid, ctx->sid_bin, sizeof(cn->sid));
        ngx_rbtree_insert(&cache->sh->rbtree, &cn->node);
    }

    ngx_memcpy(cn->fp, ctx->conn->fp_bin, sizeof(cn->fp));
    ngx_memcpy(cn->user, ctx->user.data, ctx->user.len);
    cn->user_len = (u_char) ctx->user.len;
    cn->expire = ngx_current_msec + emcf->cache_valid;
    cn->refresh = ngx_current_msec + emcf->cache_valid / 2;

    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


/* a session ended by this nginx (logout, rotation) stops at once here */

void
ngx_http_ecodoc_cache_forget(ngx_http_request_t *r, ngx_http_ecodoc_ctx_t *ctx)
{
    uint32_t                       hash;
    ngx_http_ecodoc_cache_t       *cache;
    ngx_http_ecodoc_cache_node_t  *cn;
    ngx_http_ecodoc_main_conf_t   *emcf;

    emcf = ngx_http_get_module_main_conf(r, ngx_http_ecodoc_module);

    if (emcf->cache == NULL || ctx->sid.len == 0) {
        return;
    }

    cache = emcf->cache->data;

    ngx_shmtx_lock(&cache->shpool->mutex);

    hash = ngx_crc32_short(ctx->sid_bin, NGX_HTTP_ECODOC_DIGEST_LEN);
    cn = ngx_http_ecodoc_cache_find(cache, ctx->sid_bin, hash);
    if (cn) {
        ngx_http_ecodoc_cache_delete(cache, cn);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


static ngx_http_ecodoc_cache_node_t *
ngx_http_ecodoc_cache_find(ngx_http_ecodoc_cache_t *cache, u_char *sid,
    uint32_t hash)
{
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_http_ecodoc_cache_node_t  *cn;

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key: collisions are ordered by the session ID */

        cn = (ngx_http_ecodoc_cache_node_t *) node;
        rc = ngx_memcmp(sid, cn->sid, sizeof(cn->sid));

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_ecodoc_cache_delete(ngx_http_ecodoc_cache_t *cache,
    ngx_http_ecodoc_cache_node_t *cn)
{
    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, &cn->node);
    ngx_slab_free_locked(cache->shpool, cn);
}


static void
ngx_http_ecodoc_cache_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_http_ecodoc_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            cn = (ngx_http_ecodoc_cache_node_t *) node;
            cnt = (ngx_http_ecodoc_cache_node_t *) temp;

            p = ngx_memcmp(cn->sid, cnt->sid, sizeof(cn->sid)) < 0
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_int_t
ngx_http_ecodoc_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ecodoc_cache_t  *ocache = data;

    size_t                    len;
    ngx_http_ecodoc_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_ecodoc_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_ecodoc_cache_insert_value);
    ngx_queue_init(&cache->sh->queue);

    len = sizeof(" in ecodoc_cache zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in ecodoc_cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


/* ecodoc_cache zone=name:size [valid=time]; */

char *
ngx_http_ecodoc_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ecodoc_main_conf_t *emcf = conf;

    u_char                   *p;
    ssize_t                   size;
    ngx_str_t                *value, name, s;
    ngx_uint_t                i;
    ngx_msec_t                valid;
    ngx_http_ecodoc_cache_t  *cache;

    if (emcf->cache) {
        return "is duplicate";
    }

    value = cf->args->elts;
    size = 0;
    valid = 2000;
    ngx_str_null(&name);

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            name.data = value[i].data + 5;
            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL) {
                goto invalid;
            }

            name.len = p - name.data;
            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;
            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "valid=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;
            valid = ngx_parse_time(&s, 0);

            if (valid == (ngx_msec_t) NGX_ERROR || valid == 0
                || valid > 60000)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"valid\" must be between 1ms and 60s");
                return NGX_CONF_ERROR;
            }

            continue;
        }

        goto invalid;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have the \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_ecodoc_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    emcf->cache = ngx_shared_memory_add(cf, &name, size,
                                        &ngx_http_ecodoc_module);
    if (emcf->cache == NULL) {
        return NGX_CONF_ERROR;
    }

    if (emcf->cache->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    emcf->cache->init = ngx_http_ecodoc_cache_init_zone;
    emcf->cache->data = cache;
    emcf->cache_valid = valid;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}
