//! Kubernetes field names the program keeps one copy of: the template data names its fields
//! with these `&'static str`s instead of allocating each key. (Rendered pods borrow their keys
//! from the rendered text instead.)

/// `fn known(&str) -> Option<&'static str>` over the listed names, as one `match` (compiled
/// to a switch on the length and a few comparisons).
macro_rules! known_fields {
    ($($name:literal)*) => {
        pub(crate) fn known(name: &str) -> Option<&'static str> {
            match name {
                $($name => Some($name),)*
                _ => None,
            }
        }
    };
}

// The fields of the pod objects (and their parts) that pods and the rendered sidecar usually
// carry. Missing names only cost a copy.
known_fields! {
    "apiVersion" "kind" "name" "generateName" "namespace" "labels" "annotations" "uid"
    "ownerReferences" "controller" "blockOwnerDeletion" "creationTimestamp" "resourceVersion"
    "finalizers"
    "containers" "initContainers" "volumes" "restartPolicy" "terminationGracePeriodSeconds"
    "dnsPolicy" "securityContext" "serviceAccountName" "serviceAccount" "nodeName" "nodeSelector"
    "hostname" "subdomain" "affinity" "tolerations" "schedulerName" "priority"
    "priorityClassName" "enableServiceLinks" "preemptionPolicy" "automountServiceAccountToken"
    "imagePullSecrets" "hostNetwork" "dnsConfig" "key" "operator" "effect" "tolerationSeconds"
    "image" "command" "args" "workingDir" "ports" "env" "envFrom" "resources" "volumeMounts"
    "livenessProbe" "readinessProbe" "startupProbe" "lifecycle" "terminationMessagePath"
    "terminationMessagePolicy" "imagePullPolicy" "stdin" "tty"
    "containerPort" "protocol" "hostPort" "hostIP"
    "value" "valueFrom" "fieldRef" "fieldPath" "resourceFieldRef" "resource" "divisor"
    "configMapKeyRef" "secretKeyRef" "optional" "limits" "requests"
    "mountPath" "readOnly" "subPath"
    "httpGet" "path" "port" "scheme" "host" "httpHeaders" "tcpSocket" "exec" "grpc"
    "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "successThreshold" "failureThreshold"
    "configMap" "secret" "secretName" "emptyDir" "medium" "projected" "sources" "items"
    "downwardAPI" "persistentVolumeClaim" "claimName" "defaultMode"
    "runAsUser" "runAsGroup" "runAsNonRoot" "fsGroup" "capabilities" "add" "drop" "privileged"
    "readOnlyRootFilesystem" "allowPrivilegeEscalation" "seccompProfile" "type"
    "metadata" "spec" "cpu" "memory" "serviceAccountToken" "audience" "expirationSeconds"
    "sizeLimit" "csi" "driver" "volumeAttributes" "mode" "restartPolicyRules"
}
